"""The API reference site builds with ``mkdocs build --strict`` and holds every public front end."""

import html
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason="mkdocs and mkdocstrings are the optional 'docs' extra (pip install -e '.[docs]')",
)

# page -> public names that must have their own entry there, and a sentence of one of their docstrings
REFERENCE = {
    "reference/neat": (
        ["neat.ng_adam", "neat.NGAdam", "neat.NGAdamConfig", "neat.DEFAULTS", "neat.diagnostics", "neat.Players"]
        + ["neat.PlayerGraph", "neat.NGAdamState"],
        "NG-Adam with validated hyperparameters",
    ),
    "reference/torch": (["neat.torch.NGAdam"], "as a torch.optim.Optimizer, with torch.optim.AdamW's defaults"),
    "reference/optax": (["neat.optax.ng_adam", "neat.optax.scale_by_ng_adam"], "as an optax transformation"),
    "reference/keras": (
        ["neat.keras.NGAdam", "neat.keras.NEATDiagnostics"],
        "Arguments, defaults and argument errors follow keras.optimizers.AdamW",
    ),
    "reference/functional": (["neat.functional.step", "neat.functional.ng_adam"], "nothing is read back to the host"),
    "reference/hyperparameters": (
        ["neat.hyperparameters.SCHEMA", "neat.hyperparameters.Hyperparameter"],
        "NG-Adam's nine hyperparameters, once",
    ),
    "reference/plugins": (
        ["neat.hookspecs.neat_array_namespace", "neat.plugins.BackendInfo", "neat.kernel_selection.select_kernels"]
        + ["neat.kernels.StepKernels"],
        "Hook specifications of NEAT's plug-ins",
    ),
    "reference/conformance": (
        ["neat.conformance.golden", "neat.conformance.tolerances", "neat.conformance.reference"],
        "The conformance tolerances, one place for every dtype",
    ),
}


def _text(page: Path) -> str:
    """A page's text: inline tags dropped, block tags made spaces, entities decoded, whitespace folded."""
    inline = re.sub(r"</?(?:a|code|span|em|strong|autoref)\b[^>]*>", "", page.read_text())
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", inline)).split())


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out), "-f", str(ROOT / "mkdocs.yml")]
    build = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=out)
    assert build.returncode == 0, build.stdout + build.stderr
    return out


@pytest.mark.parametrize("page", sorted(REFERENCE))
def test_reference_page_documents_its_public_names(site, page):
    names, sentence = REFERENCE[page]
    built = site / page / "index.html"
    assert built.is_file(), f"no page {page}"
    source = built.read_text()
    for name in names:
        assert f'id="{name}"' in source, f"{page}: no entry for {name}"
    assert sentence.lower() in _text(built).lower(), f"{page}: the docstring text {sentence!r} is missing"


def test_torch_page_has_the_optimizer_and_its_docstring(site):
    text = _text(site / "reference" / "torch" / "index.html")
    assert "NGAdam" in text and "torch.optim.Optimizer" in text


def test_conformance_page_lists_the_pytest_options(site):
    text = _text(site / "reference" / "conformance" / "index.html")
    for option in ("--neat-backend", "--neat-adapter", "--neat-kernels", "--neat-matrix"):
        assert option in text


def test_guides_are_the_readme_and_the_spec_is_a_page(site):
    readme = (ROOT / "README.md").read_text()
    torch_guide = _text(site / "guides" / "torch" / "index.html")
    assert "One line changes from AdamW" in readme and "One line changes from AdamW" in torch_guide
    assert "SPEC version 2" in _text(site / "spec" / "index.html")
    assert (
        'href="../../spec/#how-the-kernels-compute-the-direction"' in (site / "guides/kernels/index.html").read_text()
    )
    assert (site / "benchmarks" / "results" / "v2" / "size_trend.png").is_file()  # the README's image

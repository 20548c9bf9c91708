"""The README's commands are the ones CI runs; its example runs; the demo runs."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bash_blocks(text):
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_readme_has_two_setup_commands_and_ci_runs_them():
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = [block.strip() for block in _bash_blocks(setup)]
    assert len(commands) == 2, commands
    ci = (ROOT / ".ci" / "run").read_text()
    for command in commands:
        assert command in ci.splitlines(), f"README command not run by CI: {command}"


def test_readme_functional_example_runs():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The functional API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    namespace = {}
    exec(compile(code, "README example", "exec"), namespace)
    assert set(namespace["info"]) == {"alignment", "kappa", "step_scale", "mean_alignment", "skipped_steps"}


def test_demo_runs_and_prints_the_comparison():
    out = subprocess.run(
        [sys.executable, "-m", "neat", "--steps", "60"], capture_output=True, text=True, check=True, timeout=120
    )
    assert re.search(r"^NG-Adam\s+\d+\.\d+\s+0\.\d+\s+60\s", out.stdout, flags=re.M), out.stdout
    assert re.search(r"^AdamW\s+\d+\.\d+\s+0\.\d+\s+60\s", out.stdout, flags=re.M), out.stdout
    assert "step scale" in out.stdout and "layer 2" in out.stdout


def test_demo_without_the_demo_extra_names_the_extra():
    """A plain install (no scikit-learn): ``python -m neat`` says what to install, not an ImportError."""
    hide_sklearn = (
        "import runpy, sys; sys.modules['sklearn'] = None; "  # import sklearn now fails
        "runpy.run_module('neat', run_name='__main__')"
    )
    out = subprocess.run([sys.executable, "-c", hide_sklearn], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert "pip install 'neat-nash[demo]'" in out.stderr and "scikit-learn" in out.stderr
    assert "Traceback" not in out.stderr and "No module named" not in out.stderr


def test_readme_headline_table_is_the_recorded_one():
    """The README's benchmark table is the one ``python -m benchmarks report`` wrote (protocol v2)."""
    headline = (ROOT / "benchmarks" / "results" / "v2" / "headline.md").read_text()
    table = [line for line in headline.splitlines() if line.startswith("|")]
    assert len(table) >= 7 and "\n".join(table) in (ROOT / "README.md").read_text()

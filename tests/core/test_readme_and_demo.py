"""The README's commands are the ones CI runs; its example runs; the demo runs."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

from neat.demo import CURRENT_REPORT

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("NG-Adam", "AdamW")


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


def test_demo_on_a_cold_cache_times_the_steps_without_the_compile(tmp_path):
    """A first run (empty numba cache): the compile is timed on its own line, before the runs,
    whose seconds are the training loops alone; the demo points to the current report."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "neat", "--steps", "60"]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300, env=env).stdout
    compile_line = re.search(r"^compile and first steps: (\d+\.\d+) s$", out, flags=re.M)
    assert compile_line and out.index("Compiling") < compile_line.start(), out
    runs = [re.search(rf"^{name}\s+\d+\.\d+\s+0\.\d+\s+60\s.*\s(\d+\.\d+)$", out, flags=re.M) for name in NAMES]
    assert all(runs), out
    if importlib.util.find_spec("numba") is not None:  # the kernels compile: seconds, against ms for 60 steps
        assert all(float(run.group(1)) < float(compile_line.group(1)) for run in runs), out
    assert "step scale" in out and "layer 2" in out
    assert CURRENT_REPORT in out and (ROOT / CURRENT_REPORT).is_file()


def test_the_demo_links_the_newest_report_and_results_keep_each_version_apart():
    results = ROOT / "benchmarks" / "results"
    versions = sorted((p for p in results.iterdir() if re.fullmatch(r"v\d+", p.name)), key=lambda p: int(p.name[1:]))
    assert [p.name for p in versions][:2] == ["v1", "v2"]
    assert (ROOT / CURRENT_REPORT).parent == versions[-1]
    records = {".jsonl", ".png"}
    loose = [p.name for p in results.iterdir() if p.suffix in records or p.name in {"report.md", "headline.md"}]
    assert not loose, f"records outside a version folder: {loose}"


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

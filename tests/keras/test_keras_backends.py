"""Runs the Keras case files once per Keras backend, each in its own process.

Keras fixes its backend from ``KERAS_BACKEND`` at import (and JAX its device
count from ``XLA_FLAGS``), so one process cannot test two. All runs start
together (one module-scoped fixture) and each test waits for its own; a failed
run fails its test with the inner pytest output.

* ``keras_cases.py``: the front end (fit, save/load, players, diagnostics, golden vectors);
* ``keras_adamw_cases.py``: Keras' own ``adamw_test.py`` from the installed wheel with NG-Adam (γ = ζ = 0);
* ``keras_distribution_cases.py``: ``keras.distribution.ModelParallel`` on 4 simulated JAX CPU devices.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
#: The Keras backends NEAT supports and CI installs (TensorFlow is not among them: not in any extra, never tested).
BACKENDS = ("torch", "jax")
FOUR_CPU_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
RUNS = {  # name → (case file, its backends, extra environment)
    "front_end": ("keras_cases.py", BACKENDS, {}),
    "adamw_test": ("keras_adamw_cases.py", BACKENDS, {}),
    "distribution": ("keras_distribution_cases.py", ("jax",), FOUR_CPU_DEVICES),
}
CASES = [(name, backend) for name, (_, backends, _) in RUNS.items() for backend in backends]
TIMEOUT_S = 900


def _missing(backend: str) -> str | None:
    for module in ("keras", backend):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    return None


@pytest.fixture(scope="module")
def runs():
    started = {}
    for name, backend in CASES:
        if _missing(backend) is None:
            case_file, _, extra = RUNS[name]
            env = {**os.environ, **extra, "KERAS_BACKEND": backend}
            started[name, backend] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    str(HERE / case_file),
                    "-q",
                    "-rA",
                    "-p",
                    "no:cacheprovider",
                    "-W",
                    "ignore::DeprecationWarning",
                ],
                cwd=HERE.parents[1],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
    yield started
    for process in started.values():
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize(("run", "backend"), CASES)
def test_keras_on_backend(run, backend, runs):
    reason = _missing(backend)
    if reason:
        pytest.skip(f"Keras backend {backend!r} cannot run here: {reason}")
    output, _ = runs[run, backend].communicate(timeout=TIMEOUT_S)
    if runs[run, backend].returncode != 0:
        pytest.fail(f"{RUNS[run][0]} failed with KERAS_BACKEND={backend}:\n{output}", pytrace=False)
    summary = output.strip().splitlines()[-1]  # e.g. "8 passed, 2 xfailed in 6.19s"
    assert " passed" in summary and not re.search(r"\b(failed|errors?|skipped|xpassed)\b", summary), output

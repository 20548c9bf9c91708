"""Runs ``keras_cases.py`` once per Keras backend, each in its own process.

Keras fixes its backend from ``KERAS_BACKEND`` at import, so one process cannot
test two. Both runs start together (one module-scoped fixture) and each test
waits for its own; a failed run fails its test with the inner pytest output.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

CASES = Path(__file__).with_name("keras_cases.py")
BACKENDS = ("torch", "jax", "tensorflow")
TIMEOUT_S = 600


def _missing(backend: str) -> str | None:
    for module in ("keras", backend):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    return None


@pytest.fixture(scope="module")
def runs():
    started = {}
    for backend in BACKENDS:
        if _missing(backend) is None:
            env = {**os.environ, "KERAS_BACKEND": backend}
            started[backend] = subprocess.Popen(
                [sys.executable, "-m", "pytest", str(CASES), "-q", "-p", "no:cacheprovider",
                 "-W", "ignore::DeprecationWarning"],
                cwd=CASES.parents[2], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield started
    for process in started.values():
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize("backend", BACKENDS)
def test_keras_front_end_on_backend(backend, runs):
    reason = _missing(backend)
    if reason:
        pytest.skip(f"Keras backend {backend!r} cannot run here: {reason}")
    output, _ = runs[backend].communicate(timeout=TIMEOUT_S)
    if runs[backend].returncode != 0:
        pytest.fail(f"keras_cases.py failed with KERAS_BACKEND={backend}:\n{output}", pytrace=False)
    assert " passed" in output and " failed" not in output, output

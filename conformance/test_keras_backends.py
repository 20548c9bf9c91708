"""Keras picks one backend per process, so its adapter is checked on the other
backends in a child pytest session (``KERAS_BACKEND`` set), whose matrix rows
join this session's. The rows of this process's own Keras backend (chosen as
``import neat.keras`` chooses it: ``KERAS_BACKEND``, else an installed one) are
checked in-process like every other adapter. Runs only when no row is selected.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

from neat.conformance import discovery, plugin

KERAS_BACKENDS = ("jax", "torch")
CHILD_TIMEOUT_S = 300


def this_process_backend() -> str | None:
    """The Keras backend of this process, picked by ``import neat.keras``; ``None`` without Keras
    or without an installed backend."""
    if importlib.util.find_spec("keras") is None:
        return None
    try:
        import neat.keras  # noqa: F401
    except ImportError:
        return None
    import keras

    return keras.config.backend()


THIS_PROCESS = this_process_backend()
OTHER_BACKENDS = tuple(kb for kb in KERAS_BACKENDS if kb != THIS_PROCESS)


def skip_reason(keras_backend: str) -> str | None:
    for module in ("keras", keras_backend):
        if importlib.util.find_spec(module) is None:
            return f"{module} not installed"
    return None


class Child:
    """A child conformance session for the keras adapters, with ``KERAS_BACKEND`` set."""

    def __init__(self, keras_backend: str, directory: Path):
        self.keras_backend, self.matrix_path, self.log_path = (
            keras_backend,
            directory / "matrix.json",
            directory / "output.txt",
        )
        command = plugin.child_command(self.matrix_path, "--neat-adapter=keras*")
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                command,
                cwd=directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "KERAS_BACKEND": keras_backend},
            )

    def finish(self) -> tuple[int, dict | None, str]:
        """Wait; return the exit status, the child's matrix (if written) and the tail of its output."""
        try:
            status = self.process.wait(timeout=CHILD_TIMEOUT_S)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        matrix = json.loads(self.matrix_path.read_text()) if self.matrix_path.exists() else None
        return status, matrix, self.log_path.read_text()[-4000:]


@pytest.fixture(scope="module")
def keras_children(tmp_path_factory):
    """Start every needed child session at once, so that they run side by side."""
    children = {
        kb: Child(kb, tmp_path_factory.mktemp(f"keras-{kb}")) for kb in OTHER_BACKENDS if skip_reason(kb) is None
    }
    yield children
    for child in children.values():
        if child.process.poll() is None:
            child.process.kill()
            child.process.wait()


@pytest.mark.neat_check("subprocess", row="adapter keras (KERAS_BACKEND={keras_backend})")
@pytest.mark.parametrize("keras_backend", OTHER_BACKENDS)
def test_keras_adapter_on_other_backend(keras_backend, keras_children, request):
    reason = skip_reason(keras_backend)
    if reason:
        pytest.skip(reason)
    status, matrix, output = keras_children[keras_backend].finish()
    if matrix is not None:
        plugin.merge_child_matrix(
            request.config,
            matrix,
            lambda row: row if keras_backend in row else f"{row} (KERAS_BACKEND={keras_backend})",
        )
    assert status == 0, f"keras adapter with KERAS_BACKEND={keras_backend}: child pytest exited {status}:\n{output}"


@pytest.mark.skipif(THIS_PROCESS is None, reason="keras, or every Keras backend, is not installed")
def test_this_process_checks_its_own_keras_backend_in_process():
    """No ``KERAS_BACKEND`` needed: the suite picks an installed backend, whose adapter rows run here."""
    assert THIS_PROCESS in KERAS_BACKENDS, f"this process's Keras backend is {THIS_PROCESS!r}"
    (adapter,) = [a for a in discovery.adapters() if a.name.startswith("keras.NGAdam")]
    assert adapter.name == f"keras.NGAdam[{THIS_PROCESS}]"
    assert discovery.unavailable_reason(adapter) is None

"""Choosing the Keras backend before Keras is imported: ``neat/keras/__init__.py`` calls
:func:`ensure_keras_backend` first, so that a configured backend that is not installed
(TensorFlow, Keras' default) gives way to an installed one. This module imports no framework.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path

#: Keras backend → the module it needs, and the ``neat-nash`` extra that installs it ("" = none).
KERAS_BACKEND_MODULES = {
    "jax": ("jax", "jax"),
    "torch": ("torch", "torch"),
    "tensorflow": ("tensorflow", ""),
    "numpy": ("numpy", ""),
    "openvino": ("openvino", ""),
}
FALLBACK_BACKENDS = ("jax", "torch")  # tried in this order when the configured backend is not installed


def configured_keras_backend() -> str:
    """The backend Keras will load, read as Keras reads it, without importing Keras: the
    ``KERAS_BACKEND`` variable, else ``keras.json`` under ``KERAS_HOME`` (default ``~/.keras``,
    or ``/tmp/.keras`` when home is not writable), else ``"tensorflow"``."""
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "config"):  # imported (an import that failed leaves no module)
        return keras.config.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    if "KERAS_HOME" in os.environ:
        home = Path(os.environ["KERAS_HOME"])
    else:
        base = Path.home() if os.access(Path.home(), os.W_OK) else Path("/tmp")
        home = base / ".keras"
    try:
        return json.loads((home / "keras.json").read_text()).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def ensure_keras_backend() -> str:
    """Before Keras is imported: when ``KERAS_BACKEND`` is unset and the configured backend's
    module is missing (Keras' default, TensorFlow, usually), set ``KERAS_BACKEND`` to the first
    installed of JAX and PyTorch, with a warning naming it; with neither, raise ``ImportError``
    naming the backends and the extras that install them. Returns the backend Keras will use."""
    backend = configured_keras_backend()
    if sys.modules.get("keras") is not None or os.environ.get("KERAS_BACKEND"):
        return backend
    module, _ = KERAS_BACKEND_MODULES.get(backend, (backend, ""))
    if _installed(module):
        return backend
    for candidate in FALLBACK_BACKENDS:
        if _installed(KERAS_BACKEND_MODULES[candidate][0]):
            os.environ["KERAS_BACKEND"] = candidate
            warnings.warn(
                f"neat.keras: Keras is configured for the {backend!r} backend, which is not installed; "
                f"using KERAS_BACKEND={candidate!r} (installed). Set KERAS_BACKEND to choose another.",
                UserWarning,
                stacklevel=3,
            )
            return candidate
    extras = " or ".join(f"`pip install neat-nash[keras,{KERAS_BACKEND_MODULES[b][1]}]`" for b in FALLBACK_BACKENDS)
    raise ImportError(
        f"neat.keras needs a Keras backend: Keras is configured for {backend!r}, whose module "
        f"{module!r} is not installed, and neither of the other backends {FALLBACK_BACKENDS} is. "
        f"Install one ({extras}, or tensorflow) or set KERAS_BACKEND to an installed backend."
    )

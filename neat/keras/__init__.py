"""Keras 3 front end: ``neat.keras.NGAdam`` for ``model.compile`` and the ``NEATDiagnostics`` callback.

Importing it without ``KERAS_BACKEND`` set, when Keras' configured backend
(TensorFlow by default) is not installed, selects JAX or PyTorch (whichever is
installed, with a warning naming it) before Keras is imported.

* :mod:`neat.keras.backend_choice`: that choice, made before anything imports Keras;
* :mod:`neat.keras.optimizer`: ``NGAdam``;
* :mod:`neat.keras.layouts`: its players and graph (a bound model's, through the plug-in manager);
* :mod:`neat.keras.callbacks`: ``NEATDiagnostics`` and its TensorBoard scalar writer.
"""

from __future__ import annotations

from neat.keras.backend_choice import ensure_keras_backend

ensure_keras_backend()

from neat.keras.callbacks import NEATDiagnostics, diagnostics_as_floats  # noqa: E402  (after the backend is chosen)
from neat.keras.optimizer import KERAS_ADAMW_DEFAULTS, NGAdam  # noqa: E402

__all__ = ["KERAS_ADAMW_DEFAULTS", "NEATDiagnostics", "NGAdam", "diagnostics_as_floats"]

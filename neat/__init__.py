"""NEAT — Nash-Equilibrium Adaptive Training.

The core is framework-free: importing ``neat`` imports NumPy, pluggy and
array-api-compat only. Framework front ends load on first use:
``neat.torch``, ``neat.optax`` and ``neat.keras``.
"""

from __future__ import annotations

import importlib
import os

from neat._version import SPEC_VERSION, __version__
from neat.config import DEFAULTS, NGAdamConfig
from neat.functional import NGAdam as FunctionalNGAdam
from neat.functional import diagnostics, ng_adam
from neat.inplace import NGAdam
from neat.players import PlayerGraph, Players
from neat.state import NGAdamState

# In a source checkout backends/, adapters/ and conformance/ sit beside neat/ (installed, they are
# neat.backends, …): make them importable as such when the checkout is used through PYTHONPATH.
_checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if not os.path.isdir(os.path.join(os.path.dirname(__file__), "backends")) and os.path.isfile(
    os.path.join(_checkout, "backends", "__init__.py")
):
    __path__.append(_checkout)

_FRONT_ENDS = ("torch", "optax", "keras")

__all__ = [
    "DEFAULTS",
    "FunctionalNGAdam",
    "NGAdam",
    "NGAdamConfig",
    "NGAdamState",
    "PlayerGraph",
    "Players",
    "SPEC_VERSION",
    "__version__",
    "diagnostics",
    "ng_adam",
]


def __getattr__(name):
    if name in _FRONT_ENDS:
        return importlib.import_module(f"neat.{name}")
    raise AttributeError(f"module 'neat' has no attribute {name!r}")

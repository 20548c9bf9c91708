"""The positional layout of a compiled step's numbers, named once.

The compiled ``play`` and ``settle`` (:mod:`neat.backends.numba.game`) read a step's numbers
from one float64 array: the scalars of :data:`HYPERPARAMETERS` in that order, then each of
:data:`PER_TENSOR` for every tensor (``K`` values each). These two tuples are the only
statement of the order: the Python side fills the array by name (:func:`step_values`), the
compiled side reads it through the index constants below (module-level integers, which
numba compiles in as constants) and :func:`per_tensor`, which both sides call.

Imports NumPy only: the kernel set imports it where numba may be missing.
"""

from __future__ import annotations

import numpy as np

#: The step's scalars at the front of the array, in order.
HYPERPARAMETERS = ("gamma", "zeta", "leak", "log_step_low", "log_step_high")
#: The per-tensor values after them, ``K`` of each, in order (SPEC v2.1: each tensor's own).
PER_TENSOR = ("lr", "weight_decay", "beta1", "beta2", "eps")

# Each value's position by name (module-level integers: numba compiles them in as constants).
_slot = HYPERPARAMETERS.index
GAMMA, ZETA, LEAK = _slot("gamma"), _slot("zeta"), _slot("leak")
LOG_STEP_LOW, LOG_STEP_HIGH = _slot("log_step_low"), _slot("log_step_high")
_row = PER_TENSOR.index
LR, WEIGHT_DECAY, BETA1, BETA2, EPS = _row("lr"), _row("weight_decay"), _row("beta1"), _row("beta2"), _row("eps")
#: Where the per-tensor values start.
FIRST_PER_TENSOR = len(HYPERPARAMETERS)


def per_tensor(values, row, count):
    """The ``count`` values of ``PER_TENSOR[row]`` in ``values`` (a view). Plain Python, also
    compiled where the step reads them."""
    start = FIRST_PER_TENSOR + row * count
    return values[start : start + count]


def step_values(config, lr, weight_decay, count: int) -> np.ndarray:
    """A step's numbers as one float64 array in this layout: the :data:`HYPERPARAMETERS` of
    ``config`` (an ``NGAdamConfig`` or ``StepHyperparameters``), then ``lr``, ``weight_decay`` and
    the config's ``betas`` and ``eps`` of each of ``count`` tensors (each given as a number, a 0-d
    or a ``(K,)`` array)."""
    (beta1, beta2), (log_low, log_high) = config.betas, config.log_step_bounds
    named = {
        "gamma": config.gamma,
        "zeta": config.zeta,
        "leak": config.leak,
        "log_step_low": log_low,
        "log_step_high": log_high,
        "lr": lr,
        "weight_decay": weight_decay,
        "beta1": beta1,
        "beta2": beta2,
        "eps": config.eps,
    }
    values = np.empty(FIRST_PER_TENSOR + len(PER_TENSOR) * count)
    values[:FIRST_PER_TENSOR] = [named[name] for name in HYPERPARAMETERS]
    rows = values[FIRST_PER_TENSOR:].reshape(len(PER_TENSOR), count)
    for row, name in enumerate(PER_TENSOR):
        rows[row] = named[name]
    return values

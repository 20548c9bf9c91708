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
HYPERPARAMETERS = ("beta1", "beta2", "eps", "gamma", "zeta", "leak", "log_step_low", "log_step_high")
#: The per-tensor values after them, ``K`` of each, in order.
PER_TENSOR = ("lr", "weight_decay")

# Each value's position by name (module-level integers: numba compiles them in as constants).
_slot = HYPERPARAMETERS.index
BETA1, BETA2, EPS, GAMMA = _slot("beta1"), _slot("beta2"), _slot("eps"), _slot("gamma")
ZETA, LEAK, LOG_STEP_LOW, LOG_STEP_HIGH = _slot("zeta"), _slot("leak"), _slot("log_step_low"), _slot("log_step_high")
LR, WEIGHT_DECAY = PER_TENSOR.index("lr"), PER_TENSOR.index("weight_decay")
#: Where the per-tensor values start.
FIRST_PER_TENSOR = len(HYPERPARAMETERS)


def per_tensor(values, row, count):
    """The ``count`` values of ``PER_TENSOR[row]`` in ``values`` (a view). Plain Python, also
    compiled where the step reads them."""
    start = FIRST_PER_TENSOR + row * count
    return values[start : start + count]


def step_values(config, lr, weight_decay, count: int) -> np.ndarray:
    """A step's numbers as one float64 array in this layout: the :data:`HYPERPARAMETERS` of
    ``config`` (an ``NGAdamConfig`` or ``StepHyperparameters``), then ``lr`` and ``weight_decay``
    of each of ``count`` tensors (each given as a number, a 0-d or a ``(K,)`` array)."""
    (beta1, beta2), (log_low, log_high) = config.betas, config.log_step_bounds
    scalars = {
        "beta1": beta1,
        "beta2": beta2,
        "eps": config.eps,
        "gamma": config.gamma,
        "zeta": config.zeta,
        "leak": config.leak,
        "log_step_low": log_low,
        "log_step_high": log_high,
    }
    values = np.empty(FIRST_PER_TENSOR + len(PER_TENSOR) * count)
    values[:FIRST_PER_TENSOR] = [scalars[name] for name in HYPERPARAMETERS]
    per_tensor(values, LR, count)[...] = lr
    per_tensor(values, WEIGHT_DECAY, count)[...] = weight_decay
    return values

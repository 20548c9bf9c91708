"""Parameter dtypes: float16, bfloat16, float32, float64; float32 state below 32 bits;
state dtypes stay the same step after step."""

import numpy as np
import pytest

import neat
from neat.conformance.reference import ReferenceNGAdam

from .problems import random_problem

# Relative tolerance on parameters after 20 steps, against the float64 reference.
TOLERANCE = {"float64": 1e-10, "float32": 2e-5, "float16": 5e-3, "bfloat16": 3e-2}


def _namespaces():
    yield "numpy", np, ("float64", "float32", "float16")
    try:
        import torch
    except ImportError:
        return
    yield "torch", torch, ("float64", "float32", "float16", "bfloat16")


CASES = [(name, lib, dtype) for name, lib, dtypes in _namespaces() for dtype in dtypes]


def _to(lib, array, dtype):
    if lib is np:
        return np.asarray(array, dtype=dtype)
    return lib.tensor(array, dtype=getattr(lib, dtype))


def _to_numpy(array):
    if hasattr(array, "detach"):  # torch: numpy has no bfloat16
        import torch

        array = array.detach().to(torch.float64)
    return np.asarray(array, dtype=np.float64)


@pytest.mark.parametrize("name,lib,dtype", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_dtypes_follow_reference_with_stable_state(name, lib, dtype):
    params, players, weights, hp, grads = random_problem(4, num_steps=20)
    reference = ReferenceNGAdam(params, players, weights, hp)
    # Start from parameters exactly representable in the low-precision dtype.
    start = [_to_numpy(_to(lib, p, dtype)) for p in params]
    reference.params = [p.copy() for p in start]
    opt = neat.ng_adam(**hp)
    ours = [_to(lib, p, dtype) for p in start]
    state = opt.init(ours, players=players, graph=weights)
    state_dtype = "float32" if dtype in ("float16", "bfloat16") else dtype
    for step_grads in grads:
        rounded = [_to(lib, g, dtype) for g in step_grads]
        reference.step([_to_numpy(g) for g in rounded])
        ours, state = opt.step(ours, rounded, state)
        assert all(str(p.dtype).endswith(dtype) for p in ours)
        assert all(str(m.dtype).endswith(state_dtype) for m in state.exp_avg + state.exp_avg_sq)
        # SPEC v2 "State": z in the statistics dtype (float64 for float64 parameters, else float32)
        assert str(state.game.log_step.dtype).endswith("float64" if dtype == "float64" else "float32")
        assert str(state.game.count.dtype).endswith("int32") and str(state.game.tensor_count.dtype).endswith("int32")
    scale = max(float(np.max(np.abs(p))) for p in reference.params)
    worst = max(float(np.max(np.abs(_to_numpy(a) - e))) for a, e in zip(ours, reference.params))
    assert worst <= TOLERANCE[dtype] * scale, f"{name} {dtype}: max error {worst:.3g}"

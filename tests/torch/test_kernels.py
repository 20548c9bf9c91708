"""The foreach fast path gives the numbers of the generic array-API kernels (the contract)."""

from __future__ import annotations

import pytest
import torch

from neat.backends.torch_backend import ForeachKernels
from neat.torch import NGAdam
from tests.torch.models import HP, assert_close_lists

TOLERANCE = {torch.float64: (1e-12, 1e-13), torch.float32: (2e-5, 2e-6), torch.bfloat16: (1.6e-2, 1e-2),
             torch.float16: (2e-3, 1e-3)}
SHAPES = [(4, 3), (3,), (), (2, 2, 2), (5,), (3, 1)]
PLAYERS = [[0, 1], [2, 3], [4], [5]]
GRAPH = [(0, 1, 1.0), (1, 2, 0.5), (0, 3, 2.0)]


def run_problem(dtype, foreach, steps=25, non_finite_steps=(4, 11)):
    """Fixed random gradients with sign flips and two non-finite steps; params after every step."""
    generator = torch.Generator().manual_seed(3)
    params = [torch.randn(s, generator=generator, dtype=torch.float64).to(dtype) for s in SHAPES]
    base = [torch.randn(s, generator=generator, dtype=torch.float64) for s in SHAPES]
    optimizer = NGAdam([{"params": params[:3]}, {"params": params[3:], "lr": 0.05, "weight_decay": 0.0}],
                       players=PLAYERS, graph=GRAPH, foreach=foreach, **HP)
    history = []
    for step in range(steps):
        sign = 1.0 if (step // 3) % 2 == 0 else -1.0
        for k, (p, b) in enumerate(zip(params, base)):
            noise = torch.randn(b.shape, generator=generator, dtype=torch.float64)
            p.grad = (sign * b + 0.7 * noise).to(dtype)
        if step in non_finite_steps:
            params[step % len(params)].grad.view(-1)[0] = float("nan") if step % 2 else float("inf")
        optimizer.step()
        history.append([p.detach().clone() for p in params])
    return history, optimizer


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
def test_foreach_matches_generic(dtype):
    fast, fast_opt = run_problem(dtype, foreach=None)
    generic, generic_opt = run_problem(dtype, foreach=False)
    rtol, atol = TOLERANCE[dtype]
    for step, (a, e) in enumerate(zip(fast, generic)):
        assert_close_lists(a, e, rtol=rtol, atol=atol)
    for key, value in generic_opt.diagnostics().items():
        torch.testing.assert_close(fast_opt.diagnostics()[key], value, rtol=1e-4, atol=1e-5)
    assert int(fast_opt.diagnostics()["skipped_steps"]) == 2
    assert int(fast_opt._global["count"]) == 23


def test_foreach_statistics_match_generic_in_float64():
    from neat.kernels import GENERIC, BiasCorrection

    generator = torch.Generator().manual_seed(0)
    grads = [torch.randn(s, generator=generator, dtype=torch.float64) for s in SHAPES]
    exp_avg = [torch.randn(s, generator=generator, dtype=torch.float64) for s in SHAPES]
    exp_avg_sq = [torch.rand(s, generator=generator, dtype=torch.float64) for s in SHAPES]
    import array_api_compat.torch as xp

    previous = BiasCorrection.at(xp, torch.tensor(3), (0.9, 0.99), 1e-8, torch.float64)
    fast, fast_finite = ForeachKernels().statistics(xp, grads, exp_avg, exp_avg_sq, previous, torch.float64)
    slow, slow_finite = GENERIC.statistics(xp, grads, exp_avg, exp_avg_sq, previous, torch.float64)
    torch.testing.assert_close(fast, slow, rtol=1e-13, atol=1e-13)
    assert bool(fast_finite) and bool(slow_finite)
    grads[2] = torch.tensor(float("inf"), dtype=torch.float64)
    assert not bool(ForeachKernels().statistics(xp, grads, exp_avg, exp_avg_sq, previous, torch.float64)[1])


def test_foreach_update_out_of_place_leaves_inputs_alone():
    from neat import functional
    from neat.config import NGAdamConfig
    import neat

    params = [torch.randn(4, 3), torch.randn(3)]
    grads = [torch.randn(4, 3), torch.randn(3)]
    state = neat.ng_adam(**HP).init(params, players=[[0], [1]])
    before = [p.clone() for p in params]
    new_fast, _ = functional.step(params, grads, state, NGAdamConfig(**HP), kernels=ForeachKernels())
    new_slow, _ = functional.step(params, grads, state, NGAdamConfig(**HP))
    assert_close_lists(params, before, rtol=0, atol=0)
    assert_close_lists(new_fast, new_slow, rtol=1e-6, atol=1e-7)
    assert not torch.equal(new_fast[0], before[0])


def test_default_kernels_for_torch_are_foreach():
    import array_api_compat.torch as xp

    from neat.plugins import plugin_manager

    assert isinstance(plugin_manager().hook.neat_step_kernels(xp=xp), ForeachKernels)

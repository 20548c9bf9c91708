"""The foreach kernels give the numbers of GENERIC (the contract), pass by pass and over whole runs;
torch.optim's ``foreach`` / ``fused`` flags choose the kernel set."""

from __future__ import annotations

import array_api_compat.torch as xp
import numpy as np
import pytest
import torch

from neat.backends.torch_backend import ForeachKernels
from neat.kernel_selection import default_kernel_set, registered
from neat.kernels import GENERIC, TensorScalars
from neat.torch import FUSED_KERNELS, NGAdam, kernel_request
from tests.torch.models import HP, assert_close_lists

TOLERANCE = {
    torch.float64: (1e-12, 1e-13),
    torch.float32: (2e-5, 2e-6),
    torch.bfloat16: (1.6e-2, 1e-2),
    torch.float16: (2e-3, 1e-3),
}
SHAPES = [(4, 3), (3,), (), (2, 2, 2), (5,), (3, 1)]
PLAYERS = [[0, 1], [2, 3], [4], [5]]
GRAPH = [(0, 1, 1.0), (1, 2, 0.5), (0, 3, 2.0)]
FOREACH = registered()["foreach"].kernels  # (registration caches may be rebuilt by other tests: compare names)


def run_problem(dtype, foreach, steps=25, non_finite_steps=(4, 11), idle=((7, 2), (8, 2), (9, 4), (15, 0)), eps=1e-8):
    """Fixed random gradients with sign flips, two non-finite steps and some tensors without a
    gradient on some steps (``idle``: (step, tensor)); params after every step."""
    generator = torch.Generator().manual_seed(3)
    params = [torch.randn(s, generator=generator, dtype=torch.float64).to(dtype) for s in SHAPES]
    base = [torch.randn(s, generator=generator, dtype=torch.float64) for s in SHAPES]
    optimizer = NGAdam(
        [{"params": params[:3]}, {"params": params[3:], "lr": 0.05, "weight_decay": 0.0}],
        players=PLAYERS,
        graph=GRAPH,
        foreach=foreach,
        **{**HP, "eps": eps},
    )
    history = []
    for step in range(steps):
        sign = 1.0 if (step // 3) % 2 == 0 else -1.0
        for k, (p, b) in enumerate(zip(params, base)):
            noise = torch.randn(b.shape, generator=generator, dtype=torch.float64)
            p.grad = None if (step, k) in idle else (sign * b + 0.7 * noise).to(dtype)
        if step in non_finite_steps:
            params[step % len(params)].grad.view(-1)[0] = float("nan") if step % 2 else float("inf")
        optimizer.step()
        history.append([p.detach().clone() for p in params])
    return history, optimizer


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
def test_foreach_matches_generic_over_a_run(dtype):
    fast, fast_opt = run_problem(dtype, foreach=True)
    generic, generic_opt = run_problem(dtype, foreach=False)
    assert fast_opt._kernels.name == "foreach" and generic_opt._kernels is GENERIC
    rtol, atol = TOLERANCE[dtype]
    for a, e in zip(fast, generic):
        assert_close_lists(a, e, rtol=rtol, atol=atol)
    for key, value in generic_opt.diagnostics().items():
        torch.testing.assert_close(fast_opt.diagnostics()[key], value, rtol=1e-4, atol=1e-5)
    game = fast_opt.game_state
    assert int(game.skipped) == 2 and int(game.count) == 23
    assert game.tensor_count.tolist() == [22, 23, 21, 23, 22, 23]  # t_k: active, finite steps only
    assert torch.equal(game.tensor_count, generic_opt.game_state.tensor_count)


def test_foreach_matches_generic_with_eps_zero():
    fast, _ = run_problem(torch.float64, foreach=True, eps=0.0)
    generic, _ = run_problem(torch.float64, foreach=False, eps=0.0)
    for a, e in zip(fast, generic):
        assert_close_lists(a, e, rtol=1e-12, atol=1e-13)


def moment_coefficients(betas: str, count: int, generator):
    """``β1, 1 − β1, β2, 1 − β2`` as :class:`TensorScalars` holds them: Python floats (one for all
    tensors), 0-d tensors (scheduled or traced values), or one per tensor (param groups)."""
    if betas == "scalar":
        return 0.9, 1.0 - 0.9, 0.99, 1.0 - 0.99
    if betas == "0-d":
        beta1, beta2 = torch.tensor(0.9, dtype=torch.float64), torch.tensor(0.99, dtype=torch.float64)
    else:
        beta1 = 0.8 + 0.15 * torch.rand((count,), generator=generator, dtype=torch.float64)
        beta2 = 0.9 + 0.099 * torch.rand((count,), generator=generator, dtype=torch.float64)
    return beta1, 1.0 - beta1, beta2, 1.0 - beta2


def random_pass_inputs(dtype=torch.float64, seed=0, betas="scalar"):
    """Gradients, moments and per-tensor scalars; tensor 1 has zero denominators in both passes
    (``v = 0``, ``g = 0``, shift 0) with ``m ≠ 0`` (a second moment that underflowed, with ε = 0).
    ``betas``: how the moments' coefficients are given (:func:`moment_coefficients`)."""
    generator = torch.Generator().manual_seed(seed)

    def draw(shape, low=-1.0):
        return (torch.rand(shape, generator=generator, dtype=torch.float64) * (1.0 - low) + low).to(dtype)

    grads = [draw(s) for s in SHAPES]
    exp_avg = [draw(s) for s in SHAPES]
    exp_avg_sq = [draw(s, low=0.0) for s in SHAPES]
    exp_avg_sq[1][:2] = 0.0
    grads[1][:2] = 0.0  # the updated v stays 0 there too
    count = len(SHAPES)
    columns = [draw((count,), low=0.1).to(torch.float64) for _ in range(6)]
    for column in (columns[1], columns[5]):  # prev_shift, shift: 0 for tensor 1 (ε = 0)
        column[1] = 0.0
    return grads, exp_avg, exp_avg_sq, TensorScalars(*columns, *moment_coefficients(betas, count, generator))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_statistics_pass_matches_generic(dtype):
    grads, exp_avg, exp_avg_sq, scalars = random_pass_inputs(dtype)
    fast = FOREACH.statistics(xp, grads, exp_avg, exp_avg_sq, scalars, torch.float64)
    slow = GENERIC.statistics(xp, grads, exp_avg, exp_avg_sq, scalars, torch.float64)
    rtol, atol = TOLERANCE[dtype]
    torch.testing.assert_close(fast.sums, slow.sums, rtol=rtol, atol=atol)
    assert fast.sums.shape == (len(SHAPES), 3) and fast.sums.dtype == torch.float64
    assert_close_lists(fast.direction, slow.direction, rtol=rtol, atol=atol)
    assert torch.all(fast.direction[1][:2] == 0.0)  # zero denominator: zero direction


@pytest.mark.parametrize("with_direction", [True, False])
@pytest.mark.parametrize("betas", ["scalar", "0-d", "per-tensor"])
def test_update_pass_matches_generic(with_direction, betas):
    grads, exp_avg, exp_avg_sq, scalars = random_pass_inputs(betas=betas)
    finite = torch.tensor(True)
    results = []
    for kernels in (FOREACH, GENERIC):
        statistics = kernels.statistics(xp, grads, exp_avg, exp_avg_sq, scalars, torch.float64)
        if not with_direction:
            statistics = statistics._replace(direction=None)
        params = [torch.randn(s, generator=torch.Generator().manual_seed(5), dtype=torch.float64) for s in SHAPES]
        results.append(kernels.update(xp, params, grads, exp_avg, exp_avg_sq, statistics, scalars, finite))
    for fast, slow in zip(*results):
        assert_close_lists(fast, slow, rtol=1e-12, atol=1e-13)
        assert all(torch.isfinite(t).all() for t in fast)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("betas", ["scalar", "per-tensor"])
def test_skipped_update_is_an_exact_no_op_in_place(dtype, betas):
    grads, exp_avg, exp_avg_sq, scalars = random_pass_inputs(torch.float32, betas=betas)
    grads[0][0, 0] = float("inf")
    grads[3].view(-1)[1] = float("nan")
    params = [torch.randn(s, generator=torch.Generator().manual_seed(2)).to(dtype) for s in SHAPES]
    scalars = scalars._replace(nge=torch.full_like(scalars.nge, float("nan")))  # the game's values may be NaN
    before = [[t.clone() for t in ts] for ts in (params, exp_avg, exp_avg_sq)]
    statistics = FOREACH.statistics(xp, grads, exp_avg, exp_avg_sq, scalars, torch.float32)
    out = FOREACH.update(xp, params, grads, exp_avg, exp_avg_sq, statistics, scalars, torch.tensor(False), inplace=True)
    for new, given, old in zip(out, (params, exp_avg, exp_avg_sq), before):
        assert all(n is g for n, g in zip(new, given))
        assert all(torch.equal(n, o) for n, o in zip(new, old))


def test_out_of_place_update_leaves_inputs_alone():
    grads, exp_avg, exp_avg_sq, scalars = random_pass_inputs()
    params = [torch.randn(s, dtype=torch.float64) for s in SHAPES]
    before = [[t.clone() for t in ts] for ts in (params, exp_avg, exp_avg_sq)]
    statistics = FOREACH.statistics(xp, grads, exp_avg, exp_avg_sq, scalars, torch.float64)
    out = FOREACH.update(xp, params, grads, exp_avg, exp_avg_sq, statistics, scalars, torch.tensor(True))
    for given, old in zip((params, exp_avg, exp_avg_sq), before):
        assert all(torch.equal(g, o) for g, o in zip(given, old))
    assert not torch.equal(out[0][0], params[0])


def test_foreach_is_registered_for_torch_tensors_only():
    kernel_set = registered()["foreach"]
    assert isinstance(kernel_set.kernels, ForeachKernels) and kernel_set.priority == 10
    assert kernel_set.kernels.name == "foreach"
    assert kernel_set.unsupported(xp, [torch.zeros(2)]) is None
    assert "torch" in kernel_set.unsupported(np, [np.zeros(2)])


def test_torch_flags_map_to_kernel_sets():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert kernel_request(None, None, cpu) is None
    assert kernel_request(True, None, cpu) == kernel_request(None, False, cpu) == "foreach"
    assert kernel_request(False, None, cpu) == kernel_request(False, False, cpu) == "generic"
    assert kernel_request(None, True, cpu) == kernel_request(False, True, cpu) == "numba"
    assert kernel_request(None, True, cuda) == "triton"
    assert FUSED_KERNELS == {"cpu": "numba", "cuda": "triton"}
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together."):
        kernel_request(True, True, cpu)
    with pytest.raises(RuntimeError, match="fused=True"):
        kernel_request(None, True, torch.device("meta"))


def test_optimizer_resolves_its_kernels_once_from_the_flags():
    params = [torch.zeros(3, requires_grad=True)]
    assert NGAdam(params, foreach=True)._kernels.name == "foreach"
    assert NGAdam(params, foreach=False)._kernels is GENERIC
    assert NGAdam(params)._kernels is default_kernel_set(xp, params).kernels
    with pytest.raises(RuntimeError, match="cannot be `True` together"):
        NGAdam(params, foreach=True, fused=True)


def test_fused_flag_selects_the_fused_set_of_the_device():
    params = [torch.zeros(3, requires_grad=True)]
    if "numba" not in registered() or registered()["numba"].unsupported(xp, params) is not None:
        pytest.skip("the numba kernel set is not registered or numba is not installed (optional: neat-nash[cpu])")
    assert NGAdam(params, fused=True)._kernels is registered()["numba"].kernels

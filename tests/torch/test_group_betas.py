"""SPEC v2.1 in the torch front end: ``betas`` and ``eps`` per param group and per step, as ``lr``
and ``weight_decay`` are: against the float64 reference (which takes them per tensor), under
``OneCycleLR`` with per-group momenta, as tensors, compiled; and bit for bit the one-group run
when every group holds the same values."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch._dynamo

from neat.conformance.reference import ReferenceNGAdam
from neat.torch import NGAdam
from tests.torch.models import HP, mlp

PLAYERS = [[0, 1], [2, 3], [4, 5]]
GAME = {key: HP[key] for key in ("gamma", "zeta", "mu", "step_bounds", "leak")}
#: Two param groups (the first layer, the rest) with their own values of every per-step key.
GROUPS = (
    dict(lr=0.03, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.05),
    dict(lr=0.01, betas=(0.95, 0.999), eps=1e-3, weight_decay=0.0),
)
#: ``foreach`` / ``fused`` flags: each CPU kernel set the front end can choose.
KERNELS = {"generic": dict(foreach=False), "foreach": dict(foreach=True), "numba": dict(fused=True)}
#: ``(step, tensor)`` without a gradient: the sub-game of the active players.
INACTIVE = {(3, 3), (4, 3), (6, 0), (6, 1)}


def model_tensors(dtype=torch.float64) -> list[torch.Tensor]:
    return [p.detach().clone().requires_grad_() for p in mlp(dtype=dtype).parameters()]


def gradients(tensors, steps: int) -> list[list]:
    """Random gradients whose sign flips every other step (NGE and NSA at work), ``None`` at :data:`INACTIVE`."""
    generator = torch.Generator().manual_seed(7)
    base = [torch.randn(t.shape, generator=generator, dtype=torch.float64) for t in tensors]
    sequence = []
    for step in range(steps):
        sign = 1.0 if step % 4 < 2 else -1.0
        sequence.append(
            [
                None
                if (step, k) in INACTIVE
                else sign * b + 0.3 * torch.randn(b.shape, generator=generator, dtype=torch.float64)
                for k, b in enumerate(base)
            ]
        )
    return sequence


def two_groups(tensors, groups=GROUPS, **options) -> NGAdam:
    return NGAdam(
        [dict(groups[0], params=tensors[:2]), dict(groups[1], params=tensors[2:])], players=PLAYERS, **GAME, **options
    )


def per_tensor(optimizer: NGAdam) -> dict:
    """The groups' current values, one per tensor, as :class:`ReferenceNGAdam` takes them."""
    values: dict = {key: [] for key in ("lr", "betas", "eps", "weight_decay")}
    for group in optimizer.param_groups:
        for _ in group["params"]:
            for key, value in values.items():
                value.append(tuple(map(float, group[key])) if key == "betas" else float(group[key]))
    return values


def run_with_reference(optimizer: NGAdam, tensors, steps: int, scheduler=None):
    """``steps`` steps of ``optimizer`` and of the float64 reference fed the groups' values of each
    step; returns the largest relative deviation of the parameters over the run, the reference, and
    whether NGE was at work (some ``κ_i > 0``) at some step."""
    reference = ReferenceNGAdam([t.detach().numpy() for t in tensors], PLAYERS, _chain(3), dict(HP, **GAME))
    worst, conflict = 0.0, False
    for grads in gradients(tensors, steps):
        for t, g in zip(tensors, grads):
            t.grad = None if g is None else g.clone()
        reference.hp.update(per_tensor(optimizer))
        optimizer.step()
        reference.step([None if g is None else g.numpy() for g in grads])
        conflict |= bool(np.any(reference.kappa > 0))
        for t, expected in zip(tensors, reference.params):
            worst = max(worst, float(np.max(np.abs(t.detach().numpy() - expected)) / np.max(np.abs(expected))))
        if scheduler is not None:
            scheduler.step()
    return worst, reference, conflict


def _chain(n: int) -> np.ndarray:
    weights = np.zeros((n, n))
    for i in range(n - 1):
        weights[i, i + 1] = weights[i + 1, i] = 1.0
    return weights


@pytest.mark.parametrize("kernels", list(KERNELS))
def test_groups_with_their_own_betas_and_eps_follow_the_reference(kernels):
    """Two groups with their own ``betas``, ``eps``, ``lr``, ``weight_decay``; tensors without a gradient
    on some steps: to 1e-10 of the reference, whose every ``t_k`` the game state also counts."""
    tensors = model_tensors()
    optimizer = two_groups(tensors, **KERNELS[kernels])
    worst, reference, conflict = run_with_reference(optimizer, tensors, 10)
    assert worst <= 1e-10, f"{kernels}: deviation {worst:.3g} from the reference"
    assert optimizer.game_state.tensor_count.tolist() == reference.tensor_count
    assert min(reference.tensor_count) < reference.t and conflict


@pytest.mark.parametrize("kernels", list(KERNELS))
def test_one_cycle_with_per_group_momentum_follows_the_reference(kernels):
    """``OneCycleLR(cycle_momentum=True)`` with each group's own ``base_momentum`` / ``max_momentum``
    (and ``max_lr``) writes a different ``β1`` per group at every step."""
    tensors = model_tensors()
    optimizer = two_groups(tensors, **KERNELS[kernels])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[0.05, 0.02], total_steps=12, base_momentum=[0.8, 0.85], max_momentum=[0.9, 0.97]
    )
    worst, reference, _ = run_with_reference(optimizer, tensors, 10, scheduler)
    assert worst <= 1e-10, f"{kernels}: deviation {worst:.3g} from the reference"
    beta1 = [group["betas"][0] for group in optimizer.param_groups]
    assert beta1[0] != beta1[1] and not {0.8, 0.85, 0.9, 0.97} & set(beta1), "the scheduler cycled each group's β1"
    assert reference.t == 10


@pytest.mark.parametrize("kernels", list(KERNELS))
def test_equal_values_in_every_group_are_bit_for_bit_the_one_group_run(kernels):
    """Groups that hold the same ``betas`` and ``eps`` (changed alike by a scheduler) step exactly as
    one group: one float for all tensors, the path of a single group (float32, every step)."""
    runs = []
    for split in (False, True):
        tensors = model_tensors(torch.float32)
        values = dict(lr=0.02, betas=(0.9, 0.99), eps=1e-7, weight_decay=0.01)
        if split:
            optimizer = two_groups(tensors, (values, values), **KERNELS[kernels])
        else:
            optimizer = NGAdam([dict(values, params=tensors)], players=PLAYERS, **GAME, **KERNELS[kernels])
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=12)
        trajectory = []
        for grads in gradients(tensors, 10):
            for t, g in zip(tensors, grads):
                t.grad = None if g is None else g.to(torch.float32)
            optimizer.step()
            scheduler.step()
            trajectory.append([t.detach().clone() for t in tensors])
        runs.append(trajectory)
    for step, (one, two) in enumerate(zip(*runs)):
        for k, (a, b) in enumerate(zip(one, two)):
            assert torch.equal(a, b), f"{kernels}: step {step + 1}, tensor {k} differs"


@pytest.mark.parametrize("kernels", list(KERNELS))
def test_tensor_betas_and_eps_per_group_equal_their_floats(kernels):
    """One-element tensors as a group's ``betas`` / ``eps`` (a scheduler updates them in place), other
    groups' floats: the numbers of the same values as floats. The foreach kernels take them too."""
    runs = []
    for as_tensors in (False, True):
        tensors = model_tensors()
        groups = [dict(group) for group in GROUPS]
        if as_tensors:
            groups[0]["betas"] = (torch.tensor(0.8, dtype=torch.float64), 0.95)
            groups[1]["eps"] = torch.tensor([1e-3], dtype=torch.float64)
        optimizer = two_groups(tensors, groups, **KERNELS[kernels])
        worst, _, _ = run_with_reference(optimizer, tensors, 6)
        assert worst <= 1e-10, f"{kernels}: deviation {worst:.3g} from the reference"
        runs.append([t.detach().clone() for t in tensors])
    for a, b in zip(*runs):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)


def test_compiled_step_reads_each_groups_betas():
    """``torch.compile(opt.step)`` with per-group momenta cycled by ``OneCycleLR``: the eager numbers."""
    torch._dynamo.reset()
    results = []
    for compiled in (False, True):
        tensors = model_tensors()
        optimizer = two_groups(tensors)
        step = torch.compile(optimizer.step, fullgraph=True, backend="eager") if compiled else optimizer.step
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[0.05, 0.02], total_steps=12, base_momentum=[0.8, 0.85], max_momentum=[0.9, 0.97]
        )
        for grads in gradients(tensors, 6):
            for t, g in zip(tensors, grads):
                t.grad = None if g is None else g.clone()
            step()
            with warnings.catch_warnings():  # a compiled step bypasses torch.optim's step-count hook
                warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler\.step\(\)`", UserWarning)
                scheduler.step()
        results.append([t.detach().clone() for t in tensors])
    torch._dynamo.reset()
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)

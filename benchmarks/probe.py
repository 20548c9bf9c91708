"""SPEC alignment for optimizers that are not NEAT (AdamW), so both are measured alike.

Before step ``t`` the probe forms the Adam direction that step ``t−1`` applied,
``u = (m/(1−β1^(t−1))) / (√(v/(1−β2^(t−1))) + ε)`` from the optimizer's own moments, and the
player statistics ``G_i, C_i, U_i`` of SPEC step 3; the alignment is SPEC step 4 computed by
``neat.game.alignment`` itself.
"""

from __future__ import annotations

import functools

import array_api_compat.torch as xp
import torch

from neat import game
from neat.topology import Topology


@torch.no_grad()
def adam_direction(state: dict, group: dict) -> torch.Tensor | None:
    """SPEC step 2's ``u`` from a tensor's ``exp_avg``/``exp_avg_sq``/``step`` (``None`` before step 1)."""
    if "exp_avg" not in state:
        return None
    beta1, beta2 = group["betas"]
    t = float(state["step"])
    return (state["exp_avg"] / (1 - beta1**t)) / ((state["exp_avg_sq"] / (1 - beta2**t)).sqrt() + group["eps"])


def tensor_statistics(g: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One tensor's row of SPEC step 3, ``[⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩]`` (reduced in the inputs' dtype, as float64)."""
    return torch.stack([(g * g).sum(), (g * u).sum(), (u * u).sum()]).double()


def player_alignment(stats: torch.Tensor, players: list[list[int]]) -> torch.Tensor:
    """SPEC step 4 per player from per-tensor rows ``[⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩]`` (float64, CPU)."""
    sums = game.player_sums(xp, _tables(len(stats), tuple(map(tuple, players))), stats)
    return game.alignment(xp, sums[0], sums[1], sums[2])


@torch.no_grad()
def adam_alignment(optimizer: torch.optim.Optimizer, params: list, players: list[list[int]]) -> torch.Tensor:
    """Per-player alignment of the current gradients with the last Adam direction (0 before step 1)."""
    group = optimizer.param_groups[0]
    stats = torch.zeros(len(params), 3, dtype=torch.float64)
    for k, p in enumerate(params):
        u = adam_direction(optimizer.state.get(p, {}), group)
        if p.grad is None or u is None:
            continue
        stats[k] = tensor_statistics(p.grad, u)
    return player_alignment(stats, players)


@functools.cache
def _tables(num_tensors: int, players: tuple):
    """The players' gather tables (float64, CPU); the graph does not enter the alignment."""
    return Topology.build(num_tensors, players, None, mu=0.0).tables(xp, "cpu", torch.float64)

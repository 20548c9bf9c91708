"""SPEC alignment for optimizers that are not NEAT (AdamW), so both are measured alike.

Before step ``t`` the probe forms the Adam direction that step ``t−1`` applied,
``u = (m/(1−β1^(t−1))) / (√(v/(1−β2^(t−1))) + ε)`` from the optimizer's own moments, and the
player statistics ``G_i, C_i, U_i`` of SPEC step 3; the alignment is SPEC step 4 computed by
``neat.game.alignment`` itself.
"""

from __future__ import annotations

import torch

from neat import game


@torch.no_grad()
def adam_alignment(optimizer: torch.optim.Optimizer, params: list, players: list[list[int]]) -> torch.Tensor:
    """Per-player alignment of the current gradients with the last Adam direction (0 before step 1)."""
    group = optimizer.param_groups[0]
    beta1, beta2 = group["betas"]
    stats = torch.zeros(len(params), 3, dtype=torch.float64)
    for k, p in enumerate(params):
        state = optimizer.state.get(p, {})
        if p.grad is None or "exp_avg" not in state:
            continue
        t = float(state["step"])
        u = (state["exp_avg"] / (1 - beta1 ** t)) / ((state["exp_avg_sq"] / (1 - beta2 ** t)).sqrt() + group["eps"])
        g = p.grad
        stats[k] = torch.stack([(g * g).sum(), (g * u).sum(), (u * u).sum()]).double()
    membership = torch.zeros(len(params), len(players), dtype=torch.float64)
    for i, members in enumerate(players):
        membership[members, i] = 1.0
    sums = [game.player_sums(torch, membership, stats[:, c]) for c in range(3)]
    return game.alignment(torch, *sums)

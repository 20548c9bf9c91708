"""Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms", Program 1).

``c = β1 m + (1−β1) g``;  ``θ ← θ(1 − η ω) − η sign(c)``;  ``m ← β2 m + (1−β2) g``.
"""

from __future__ import annotations

import torch

from benchmarks.per_tensor import PerTensorOptimizer


class Lion(PerTensorOptimizer):
    """Sign of an interpolated momentum, with decoupled weight decay."""

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(params, lr=lr, betas=betas, weight_decay=weight_decay)

    def update(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        m = state.setdefault("exp_avg", torch.zeros_like(param))
        direction = m.lerp(grad, 1 - beta1).sign_()
        param.mul_(1 - group["lr"] * group["weight_decay"]).sub_(direction, alpha=group["lr"])
        m.lerp_(grad, 1 - beta2)

"""LAMB (You et al., 2019, "Large Batch Optimization for Deep Learning", Algorithm 2).

Per tensor: ``m ← β1 m + (1−β1) g``, ``v ← β2 v + (1−β2) g²``, ``r = m̂/(√v̂ + ε) + ω θ``,
``θ ← θ − η · (‖θ‖/‖r‖) · r`` with the trust ratio taken as 1 where either norm is 0.
"""

from __future__ import annotations

import torch

from benchmarks.per_tensor import PerTensorOptimizer, adam_moments


class Lamb(PerTensorOptimizer):
    """Adam direction plus decoupled decay, rescaled per tensor by the trust ratio ‖θ‖/‖r‖."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def update(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        t, m, v = adam_moments(param, grad, state, group["betas"])
        r = (m / (1 - beta1**t)) / ((v / (1 - beta2**t)).sqrt() + group["eps"])
        r.add_(param, alpha=group["weight_decay"])
        w_norm, r_norm = param.norm(), r.norm()
        trust = torch.where((w_norm > 0) & (r_norm > 0), w_norm / r_norm, torch.ones_like(w_norm))
        param.sub_(group["lr"] * trust * r)

"""LAMB (You et al., 2019, "Large Batch Optimization for Deep Learning", Algorithm 2).

Per tensor: ``m ← β1 m + (1−β1) g``, ``v ← β2 v + (1−β2) g²``, ``r = m̂/(√v̂ + ε) + ω θ``,
``θ ← θ − η · (‖θ‖/‖r‖) · r`` with the trust ratio taken as 1 where either norm is 0.
"""

from __future__ import annotations

import torch


class Lamb(torch.optim.Optimizer):
    """Adam direction plus decoupled decay, rescaled per tensor by the trust ratio ‖θ‖/‖r‖."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0):
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(
                f"Invalid LAMB hyperparameters: lr={lr}, betas={betas}, eps={eps}, weight_decay={weight_decay}"
            )
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                m.lerp_(p.grad, 1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                r = (m / (1 - beta1**t)) / ((v / (1 - beta2**t)).sqrt() + group["eps"])
                r.add_(p, alpha=group["weight_decay"])
                w_norm, r_norm = p.norm(), r.norm()
                trust = torch.where((w_norm > 0) & (r_norm > 0), w_norm / r_norm, torch.ones_like(w_norm))
                p.sub_(group["lr"] * trust * r)
        return loss

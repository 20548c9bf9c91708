"""NAdamW in the form of the AlgoPerf baseline (Nesterov-accelerated Adam with decoupled decay,
without torch's momentum-decay schedule ψ).

Per tensor, step ``t``: ``θ ← θ(1 − η ω)``; ``m ← β1 m + (1−β1) g``; ``v ← β2 v + (1−β2) g²``;
the Nesterov look-ahead ``n = β1 m + (1−β1) g``;
``θ ← θ − η · (n / (1−β1^t)) / (√(v / (1−β2^t)) + ε)``.
(``torch.optim.NAdam`` instead multiplies β1 by ``1 − ½·0.96^(t ψ)`` and keeps a running product of
those factors; AlgoPerf's NAdamW does not.)
"""

from __future__ import annotations

import torch


class NAdamW(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(
                f"Invalid NAdamW hyperparameters: lr={lr}, betas={betas}, eps={eps}, weight_decay={weight_decay}"
            )
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, decay = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                p.mul_(1 - lr * decay)
                m.lerp_(g, 1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                look_ahead = m.mul(beta1).add_(g, alpha=1 - beta1)
                denom = (v / (1 - beta2**t)).sqrt_().add_(eps)
                p.addcdiv_(look_ahead, denom, value=-lr / (1 - beta1**t))
        return loss

"""NAdamW in the form of the AlgoPerf baseline (Nesterov-accelerated Adam with decoupled decay,
without torch's momentum-decay schedule ψ).

Per tensor, step ``t``: ``θ ← θ(1 − η ω)``; ``m ← β1 m + (1−β1) g``; ``v ← β2 v + (1−β2) g²``;
the Nesterov look-ahead ``n = β1 m + (1−β1) g``;
``θ ← θ − η · (n / (1−β1^t)) / (√(v / (1−β2^t)) + ε)``.
(``torch.optim.NAdam`` instead multiplies β1 by ``1 − ½·0.96^(t ψ)`` and keeps a running product of
those factors; AlgoPerf's NAdamW does not.)
"""

from __future__ import annotations

from benchmarks.per_tensor import PerTensorOptimizer, adam_moments


class NAdamW(PerTensorOptimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def update(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        lr = group["lr"]
        param.mul_(1 - lr * group["weight_decay"])
        t, m, v = adam_moments(param, grad, state, group["betas"])
        look_ahead = m.mul(beta1).add_(grad, alpha=1 - beta1)
        denom = (v / (1 - beta2**t)).sqrt_().add_(group["eps"])
        param.addcdiv_(look_ahead, denom, value=-lr / (1 - beta1**t))

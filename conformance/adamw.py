"""An independent AdamW in float64, as ``torch.optim.AdamW`` and ``optax.adamw`` define it.

With ``γ = ζ = 0`` NG-Adam must reduce to exactly this (SPEC "Required reductions"):
``θ ← θ (1 − η ω)``; ``m ← β1 m + (1 − β1) g``; ``v ← β2 v + (1 − β2) g²``;
``θ ← θ − η (m / (1 − β1^t)) / (√(v / (1 − β2^t)) + ε)``, with ``t`` the tensor's own
step count: a tensor whose gradient is ``None`` is left alone and its count does not
advance, as ``torch.optim.AdamW`` skips a parameter without a gradient. AdamW has no
non-finite guard; a step with a non-finite gradient is skipped here as NG-Adam's
SPEC step 0 skips it, so that problems with such steps can be compared too.
"""

from __future__ import annotations

import numpy as np


def adamw_trajectory(params, grads_per_step, *, lr, betas, eps, weight_decay, **_ignored) -> list:
    """Parameters after every step (float64 NumPy arrays); extra NG-Adam hyperparameters are ignored."""
    beta1, beta2 = betas
    theta = [np.array(p, dtype=np.float64) for p in params]
    m = [np.zeros_like(p) for p in theta]
    v = [np.zeros_like(p) for p in theta]
    count = [0] * len(theta)
    trajectory = []
    for grads in grads_per_step:
        active = {k: np.asarray(g, dtype=np.float64) for k, g in enumerate(grads) if g is not None}
        if all(np.all(np.isfinite(g)) for g in active.values()):
            for k, g in active.items():
                count[k] += 1
                t = count[k]
                m[k] = beta1 * m[k] + (1 - beta1) * g
                v[k] = beta2 * v[k] + (1 - beta2) * g * g
                theta[k] = theta[k] * (1 - lr * weight_decay)
                theta[k] = theta[k] - lr * (m[k] / (1 - beta1**t)) / (np.sqrt(v[k] / (1 - beta2**t)) + eps)
        trajectory.append([p.copy() for p in theta])
    return trajectory

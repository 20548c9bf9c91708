"""Random NG-Adam problems shared by the core tests."""

from __future__ import annotations

import numpy as np


def random_problem(seed: int, *, chain: bool = True, num_steps: int = 50):
    """Shapes, players, graph weights, hyperparameters and a gradient sequence with
    sign flips (so alignment takes both signs and NGE/NSA are active)."""
    rng = np.random.default_rng(seed)
    num_tensors = int(rng.integers(3, 8))
    shapes = [tuple(int(d) for d in rng.integers(1, 5, size=rng.integers(0, 3))) for _ in range(num_tensors)]
    order = rng.permutation(num_tensors)
    cuts = sorted(rng.choice(np.arange(1, num_tensors), size=min(2, num_tensors - 1), replace=False))
    players = [sorted(int(k) for k in part) for part in np.split(order, cuts)]
    n = len(players)
    weights = np.zeros((n, n))
    if chain:
        for i in range(n - 1):
            weights[i, i + 1] = weights[i + 1, i] = 1.0
    else:
        for i in range(n):
            for j in range(i + 1, n):
                if rng.random() < 0.7:
                    weights[i, j] = weights[j, i] = rng.uniform(0.1, 3.0)
    hp = dict(lr=float(rng.uniform(0.01, 0.1)), betas=(0.9, float(rng.choice([0.99, 0.999]))), eps=1e-8,
              weight_decay=float(rng.uniform(0, 0.1)), gamma=float(rng.uniform(0.3, 1.0)),
              zeta=float(rng.uniform(0.05, 0.5)), mu=float(rng.uniform(0.0, 3.0)),
              step_bounds=(float(rng.uniform(0.2, 0.9)), float(rng.uniform(1.1, 4.0))),
              leak=float(rng.uniform(0.0, 0.2)))
    params = [rng.normal(size=s) for s in shapes]
    base = [rng.normal(size=s) for s in shapes]
    grads = []
    for step in range(num_steps):
        sign = 1.0 if (step // int(rng.integers(1, 4))) % 2 == 0 else -1.0
        grads.append([sign * b + 0.5 * rng.normal(size=b.shape) for b in base])
    return params, players, weights, hp, grads


def run_core(opt, params, grads_sequence, players=None, graph=None):
    """Run the functional API; return the final params and state."""
    state = opt.init(params, players=players, graph=graph)
    for grads in grads_sequence:
        params, state = opt.step(params, grads, state)
    return params, state


def max_relative_error(actual, expected) -> float:
    return max(float(np.max(np.abs(np.asarray(a, dtype=np.float64) - e) / np.maximum(np.abs(e), 1e-12)))
               for a, e in zip(actual, expected))

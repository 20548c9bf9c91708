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
    hp = dict(
        lr=float(rng.uniform(0.01, 0.1)),
        betas=(0.9, float(rng.choice([0.99, 0.999]))),
        eps=1e-8,
        weight_decay=float(rng.uniform(0, 0.1)),
        gamma=float(rng.uniform(0.3, 1.0)),
        zeta=float(rng.uniform(0.05, 0.5)),
        mu=float(rng.uniform(0.0, 3.0)),
        step_bounds=(float(rng.uniform(0.2, 0.9)), float(rng.uniform(1.1, 4.0))),
        leak=float(rng.uniform(0.0, 0.2)),
    )
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


def max_scaled_error(actual, expected) -> float:
    """``max |a − e| / max |e|`` per tensor: relative to the tensor's scale, so that an entry passing
    near 0 is not held to a relative precision no rounding gives it."""
    return max(
        float(np.max(np.abs(np.asarray(a, dtype=np.float64) - e)) / max(float(np.max(np.abs(e))), 1e-300))
        for a, e in zip(actual, expected)
    )


def max_relative_error(actual, expected) -> float:
    return max(
        float(np.max(np.abs(np.asarray(a, dtype=np.float64) - e) / np.maximum(np.abs(e), 1e-12)))
        for a, e in zip(actual, expected)
    )


def with_inactive(grads_sequence, seed: int):
    """The gradients with some set to ``None`` (inactive tensors, SPEC v2): tensor 0 starts at
    step 4, then every tensor sits out a step with probability 1/4; one tensor stays active."""
    rng = np.random.default_rng(seed + 1000)
    result = []
    for step, grads in enumerate(grads_sequence):
        off = {k for k in range(len(grads)) if rng.random() < 0.25} | ({0} if step < 3 else set())
        keep = int(rng.integers(1, len(grads))) if len(off) == len(grads) else None
        result.append([None if k in off and k != keep else g for k, g in enumerate(grads)])
    return result


def run_functional(config, topology, params, grads_sequence, kernels=None):
    """Run :func:`neat.functional.step` with the game's topology (so ``None`` gradients are allowed);
    yield the params and state after every step."""
    from neat import functional

    state = functional.init_state(params, topology)
    for grads in grads_sequence:
        params, state = functional.step(params, grads, state, config, topology=topology, kernels=kernels)
        yield params, state

"""Small Flax models and data shared by the JAX tests."""

from __future__ import annotations

import contextlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


class MLP(nn.Module):
    """Two Dense layers: two players by default (``params/Dense_0``, ``params/Dense_1``)."""

    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(jnp.tanh(nn.Dense(8)(x)))


def mlp_params(seed: int = 0):
    return MLP().init(jax.random.key(seed), jnp.zeros((1, 5)))


def batch(step: int, size: int = 16):
    """Deterministic regression data for step ``step``."""
    x = jax.random.normal(jax.random.key(1000 + step), (size, 5))
    y = jnp.sin(x[:, :3] * 2.0) + 0.1 * jax.random.normal(jax.random.key(2000 + step), (size, 3))
    return x, y


def loss(params, x, y):
    return jnp.mean((MLP().apply(params, x) - y) ** 2)


grad = jax.jit(jax.grad(loss))


def train(tx: optax.GradientTransformation, params, steps: int, grads_at=None):
    """``steps`` jitted optax steps; ``grads_at(step, params)`` may replace the model's gradients."""
    state = tx.init(params)

    @jax.jit
    def train_step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    for step in range(steps):
        grads = grads_at(step, params) if grads_at else grad(params, *batch(step))
        params, state = train_step(params, state, grads)
    return params, state


def assert_trees_close(actual, expected, rtol=2e-5, atol=2e-6):
    import numpy as np

    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(e, np.float64), rtol=rtol, atol=atol)


COMPILE_EVENTS = {
    "/jax/core/compile/jaxpr_trace_duration": "traces",
    "/jax/core/compile/backend_compile_duration": "compiles",
}


@contextlib.contextmanager
def compilations():
    """Count JAX's traces and XLA compilations inside the block (``jax.monitoring`` events)."""
    counts = dict.fromkeys(COMPILE_EVENTS.values(), 0)

    def listener(event, duration, **kwargs):
        if event in COMPILE_EVENTS:
            counts[COMPILE_EVENTS[event]] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield counts
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def assert_same_placement(actual, expected):
    """Same pytree, and leaf by leaf the same aval (shape, dtype, weak type) and sharding:
    what decides whether a jitted function is traced and compiled again."""
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
        assert jax.typeof(a) == jax.typeof(e) and a.weak_type == e.weak_type, (jax.typeof(a), jax.typeof(e))
        assert a.sharding.is_equivalent_to(e.sharding, a.ndim), (a.sharding, e.sharding)  # P(None,) ≡ P()

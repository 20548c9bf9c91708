"""Parameters sharded with NamedSharding over 4 simulated CPU devices (tests/conftest.py sets XLA_FLAGS)."""

import functools

import jax
import jax.numpy as jnp
import optax
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import neat.optax
from tests.jax.models import assert_same_placement, assert_trees_close, compilations

pytestmark = pytest.mark.skipif(
    jax.device_count() < 4,
    reason="needs 4 devices: XLA_FLAGS=--xla_force_host_platform_device_count=4 must be set before jax is imported",
)

SPECS = {"embed": {"table": P("x", None)}, "mlp": {"kernel": P(None, "x"), "bias": P("x")}, "norm": {"scale": P()}}


def make_params():
    keys = jax.random.split(jax.random.key(0), 4)
    return {
        "embed": {"table": jax.random.normal(keys[0], (16, 6))},
        "mlp": {"kernel": jax.random.normal(keys[1], (6, 8)), "bias": jax.random.normal(keys[2], (8,))},
        "norm": {"scale": jax.random.normal(keys[3], (6,))},
    }


def loss(params, step):
    x = jax.random.normal(jax.random.key(step), (4, 16))
    h = jnp.tanh((x @ params["embed"]["table"]) * params["norm"]["scale"])
    return jnp.mean((h @ params["mlp"]["kernel"] + params["mlp"]["bias"]) ** 2)


def run(params, tx, steps=4):
    state = tx.init(params)

    @jax.jit
    def train_step(params, state, step):
        updates, state = tx.update(jax.grad(loss)(params, step), state, params)
        return optax.apply_updates(params, updates), state

    with compilations() as counts:
        for step in range(steps):
            params, state = train_step(params, state, step)
    assert counts == {"traces": 1, "compiles": 1}  # the state keeps init's avals and shardings
    return params, state


TX = neat.optax.ng_adam(0.05, gamma=1.0, zeta=0.3, weight_decay=0.01)


@functools.lru_cache(maxsize=1)
def unsharded_result():
    return run(jax.device_put(make_params(), jax.devices()[0]), TX)  # committed, as the step's outputs are


@pytest.mark.parametrize("axis_type", [AxisType.Explicit, AxisType.Auto])
def test_sharded_training_matches_unsharded_and_state_follows_the_sharding(axis_type):
    mesh = jax.make_mesh((4,), ("x",), axis_types=(axis_type,))
    shardings = jax.tree.map(lambda spec: NamedSharding(mesh, spec), SPECS)
    expected, expected_state = unsharded_result()
    sharded = jax.device_put(make_params(), shardings)
    with jax.set_mesh(mesh):
        state = TX.init(sharded)
        trained, trained_state = run(sharded, TX)
    assert_same_placement(trained_state, state)
    leaves = jax.tree.leaves(sharded)
    for param, m, v in zip(leaves, jax.tree.leaves(state.exp_avg), jax.tree.leaves(state.exp_avg_sq)):
        assert m.sharding.is_equivalent_to(param.sharding, param.ndim)
        assert v.sharding.is_equivalent_to(param.sharding, param.ndim)
    replicated = NamedSharding(mesh, P())
    for small in jax.tree.leaves((state.game, state.tables)):
        assert small.sharding.is_equivalent_to(replicated, small.ndim)
    for param, new in zip(leaves, jax.tree.leaves(trained)):
        assert new.sharding.is_equivalent_to(param.sharding, param.ndim)
    assert_trees_close(trained, expected)
    assert_trees_close(trained_state.game.log_step, expected_state.game.log_step)

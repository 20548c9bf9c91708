"""neat.optax.ng_adam against the core functional API and against optax.adamw (SPEC "Required reductions")."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import neat
import neat.optax
from neat import functional
from neat.adapters.optax_adapter import pytree_layout
from neat.topology import Topology
from tests.jax.models import assert_trees_close, batch, grad, mlp_params, train

HP = dict(gamma=1.0, zeta=0.2, mu=1.0, leak=0.05, step_bounds=(0.5, 2.0), weight_decay=0.01)


def core_numpy_training(params, steps, lr, betas, eps, players=None, **hp):
    """The same model trained with the functional API on NumPy arrays (gradients from JAX)."""
    layout = pytree_layout(params)
    treedef = jax.tree.structure(params)
    opt = neat.ng_adam(lr=lr, betas=betas, eps=eps, **hp)
    leaves = [np.asarray(p) for p in layout.tensors]
    state = opt.init(leaves, players=layout.players if players is None else players)
    for step in range(steps):
        grads = grad(treedef.unflatten([jnp.asarray(p) for p in leaves]), *batch(step))
        leaves, state = opt.step(leaves, [np.asarray(g) for g in jax.tree.leaves(grads)], state)
    assert all(isinstance(p, np.ndarray) and p.dtype == np.float32 for p in leaves)
    return treedef.unflatten(leaves), state


def test_flax_model_20_steps_matches_core_functional_api_on_numpy():
    params = mlp_params()
    trained, state = train(neat.optax.ng_adam(0.02, b1=0.9, b2=0.99, eps=1e-8, **HP), params, 20)
    expected, expected_state = core_numpy_training(params, 20, 0.02, (0.9, 0.99), 1e-8, **HP)
    assert_trees_close(trained, expected)
    np.testing.assert_allclose(np.asarray(state.game.log_step), expected_state.game.log_step, atol=1e-5)
    assert int(state.game.count) == 20
    # The game is active here: NG-Adam is measurably not AdamW on this problem.
    adamw, _ = train(optax.adamw(0.02, b1=0.9, b2=0.99, eps=1e-8, weight_decay=0.01), params, 20)
    assert max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(trained), jax.tree.leaves(adamw))) > 1e-3


def test_reduces_to_optax_adamw_over_100_steps():
    params = mlp_params(1)
    kwargs = dict(b1=0.8, b2=0.95, eps=1e-6, weight_decay=0.05)
    ours, _ = train(neat.optax.ng_adam(3e-3, gamma=0.0, zeta=0.0, mu=2.0, **kwargs), params, 100)
    theirs, _ = train(optax.adamw(3e-3, **kwargs), params, 100)
    assert_trees_close(ours, theirs)


def test_default_players_are_module_subtrees_in_a_chain():
    params = mlp_params()
    layout = pytree_layout(params)
    assert layout.player_names == ("params/Dense_0", "params/Dense_1")
    assert layout.players == [[0, 1], [2, 3]]
    assert layout.names == [
        "params/Dense_0/bias",
        "params/Dense_0/kernel",
        "params/Dense_1/bias",
        "params/Dense_1/kernel",
    ]
    tables = neat.optax.ng_adam(1e-3).init(params).tables
    np.testing.assert_array_equal(np.asarray(tables.owner), [0, 0, 1, 1])
    np.testing.assert_array_equal(np.asarray(tables.members), [[0, 1], [2, 3]])
    smoothing = np.linalg.inv(np.eye(2) + np.array([[1, -1], [-1, 1]]))
    np.testing.assert_allclose(
        np.asarray(tables.weights), np.take_along_axis(smoothing, np.asarray(tables.neighbours), axis=1), rtol=1e-6
    )


@pytest.mark.parametrize(
    "players, groups",
    [
        (lambda path: path[-1].key, [[0, 2], [1, 3]]),  # by leaf name: all biases, all kernels
        ([[0], [1], [2, 3]], [[0], [1], [2, 3]]),  # explicit lists of leaf indices
    ],
)
def test_players_by_function_or_lists_match_the_core(players, groups):
    params = mlp_params()
    trained, state = train(neat.optax.ng_adam(0.02, b1=0.9, b2=0.99, players=players, **HP), params, 5)
    expected, _ = core_numpy_training(params, 5, 0.02, (0.9, 0.99), 1e-8, players=groups, **HP)
    assert state.game.log_step.shape == (len(groups),)
    assert_trees_close(trained, expected)


def test_schedule_is_read_at_the_step_count_and_skipped_steps_do_not_advance_it():
    params = mlp_params()
    schedule = optax.linear_schedule(0.05, 0.0, 10)
    bad = {2, 3}

    def grads_at(step, p):
        g = grad(p, *batch(step))
        return jax.tree.map(lambda x: x * jnp.nan, g) if step in bad else g

    trained, state = train(neat.optax.ng_adam(schedule, **HP), params, 8, grads_at)
    assert int(state.game.count) == 6 and int(state.game.skipped) == 2
    # The core fed by hand: the lr of the t-th step taken is schedule(t - 1).
    opt = neat.ng_adam(**HP)
    layout = pytree_layout(params)
    leaves, core_state, taken = list(layout.tensors), opt.init(layout.tensors, players=layout.players), 0
    treedef = jax.tree.structure(params)
    core_step = jax.jit(lambda p, g, s, lr: neat.functional.step(p, g, s, opt.config, lr=lr))
    for step in range(8):
        g = jax.tree.leaves(grads_at(step, treedef.unflatten(leaves)))
        leaves, core_state = core_step(leaves, g, core_state, schedule(taken))
        taken += step not in bad
    assert_trees_close(trained, treedef.unflatten(leaves))


def test_non_finite_gradient_gives_zero_updates_and_keeps_the_state():
    params = mlp_params()
    tx = neat.optax.ng_adam(0.01, **HP)
    state = tx.init(params)
    update = jax.jit(tx.update)
    _, state = update(grad(params, *batch(0)), state, params)
    grads = jax.tree.map(lambda x: x.at[(0,) * x.ndim].set(jnp.inf), grad(params, *batch(1)))
    updates, new_state = update(grads, state, params)
    assert all(not np.any(np.asarray(u)) for u in jax.tree.leaves(updates))
    assert int(new_state.game.skipped) == 1 and int(new_state.game.count) == 1
    old_state, new_state = (s._replace(game=s.game._replace(skipped=0)) for s in (state, new_state))
    for old, new in zip(jax.tree.leaves(old_state), jax.tree.leaves(new_state)):
        np.testing.assert_array_equal(np.asarray(old), np.asarray(new))


def test_none_gradient_leaves_are_left_alone_and_the_others_play_the_sub_game():
    """SPEC v2: a leaf without a gradient keeps its value and moments; the step is the core's
    sub-game step. Two jitted wrappers trace the same patterns (the sub-game tables of one trace
    must not leak into the other)."""
    params = mlp_params()
    treedef = jax.tree.structure(params)
    tx = neat.optax.ng_adam(0.02, **HP)
    opt = neat.ng_adam(lr=0.02, **HP)
    topology = Topology.build(4, pytree_layout(params).players, None, mu=HP["mu"])
    leaves, core_state = jax.tree.leaves(params), functional.init_state(jax.tree.leaves(params), topology)
    state = tx.init(params)
    updates = [jax.jit(tx.update), jax.jit(lambda g, s, p: tx.update(g, s, p))]
    for step in range(6):
        before = (params, state.exp_avg, state.exp_avg_sq)
        grads = jax.tree.leaves(grad(params, *batch(step)))
        grads[step % 3] = None  # tensor 0, 1 or 2 (a bias or a kernel, in either player) is frozen
        delta, state = updates[step % 2](treedef.unflatten(grads), state, params)
        params = optax.apply_updates(params, delta)
        leaves, core_state = functional.step(leaves, grads, core_state, opt.config, topology=topology)
        for old, new in zip(before, (params, state.exp_avg, state.exp_avg_sq)):
            assert np.array_equal(jax.tree.leaves(old)[step % 3], jax.tree.leaves(new)[step % 3])
        assert_trees_close(params, treedef.unflatten(leaves))
    np.testing.assert_array_equal(state.game.tensor_count, core_state.game.tensor_count)
    np.testing.assert_allclose(state.game.log_step, core_state.game.log_step, rtol=1e-5, atol=1e-6)

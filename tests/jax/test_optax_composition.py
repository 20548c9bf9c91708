"""ng_adam inside optax's combinators, under jit with donation, and its state as a pytree."""

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import neat.optax
from tests.jax.models import assert_trees_close, batch, grad, mlp_params, train

HP = dict(gamma=1.0, zeta=0.2, leak=0.05, weight_decay=0.01)


def test_chain_with_clip_by_global_norm_equals_clipping_by_hand():
    params = mlp_params()
    tx = neat.optax.ng_adam(0.02, eps=0.1, **HP)  # a large eps: the step depends on the gradient's scale
    chained, _ = train(optax.chain(optax.clip_by_global_norm(0.05), tx), params, 4)

    @jax.jit
    def clip(g):
        return jax.tree.map(lambda x: x * jnp.minimum(1.0, 0.05 / optax.tree.norm(g)), g)

    by_hand, _ = train(tx, params, 4, lambda step, p: clip(grad(p, *batch(step))))
    assert_trees_close(chained, by_hand)
    unclipped, _ = train(tx, params, 4)
    differences = [float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(chained), jax.tree.leaves(unclipped))]
    assert max(differences) > 1e-3


def test_multi_steps_applies_one_step_on_the_mean_gradient():
    params = mlp_params()
    accumulated, state = train(optax.MultiSteps(neat.optax.ng_adam(0.02, **HP), every_k_schedule=2), params, 4)

    mean = jax.jit(lambda a, b: jax.tree.map(lambda x, y: (x + y) / 2, a, b))

    def mean_of_pair(step, p):  # micro-batches 2s and 2s+1 at the same parameters
        return mean(grad(p, *batch(2 * step)), grad(p, *batch(2 * step + 1)))

    direct, _ = train(neat.optax.ng_adam(0.02, **HP), params, 2, mean_of_pair)
    assert int(state.inner_opt_state.game.count) == 2
    assert_trees_close(accumulated, direct)


def test_inject_hyperparams_traces_every_numeric_hyperparameter_and_can_change_lr():
    params = mlp_params()
    injected = optax.inject_hyperparams(neat.optax.ng_adam)(learning_rate=0.02, b2=0.99, **HP)
    trained, state = train(injected, params, 3)
    plain, _ = train(neat.optax.ng_adam(0.02, b2=0.99, **HP), params, 3)
    assert_trees_close(trained, plain)
    assert set(state.hyperparams) >= {"learning_rate", "b1", "gamma", "zeta", "weight_decay"}
    state.hyperparams["learning_rate"] = jnp.asarray(0.0)
    state.hyperparams["weight_decay"] = jnp.asarray(0.0)
    updates, _ = jax.jit(injected.update)(grad(trained, *batch(9)), state, trained)
    assert all(not np.any(np.asarray(u)) for u in jax.tree.leaves(updates))


def test_learning_rate_may_be_a_traced_array():
    params = mlp_params()
    grads = grad(params, *batch(0))
    state = neat.optax.ng_adam(0.02, **HP).init(params)
    traced = jax.jit(lambda lr, g, s, p: neat.optax.ng_adam(lr, **HP).update(g, s, p))
    plain = jax.jit(neat.optax.ng_adam(0.02, **HP).update)
    assert_trees_close(traced(jnp.float32(0.02), grads, state, params), plain(grads, state, params))


def test_donated_buffers_give_the_same_result():
    params = mlp_params()
    tx = neat.optax.ng_adam(0.02, **HP)

    def train_step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    plain, donating = jax.jit(train_step), jax.jit(train_step, donate_argnums=(0, 1))
    expected = plain(params, tx.init(params), grad(params, *batch(0)))
    fresh = jax.tree.map(jnp.copy, params)
    result = donating(fresh, tx.init(fresh), grad(fresh, *batch(0)))
    assert_trees_close(result, expected, rtol=0, atol=0)


def test_update_runs_without_device_to_host_transfers():
    params = mlp_params()
    tx = neat.optax.ng_adam(optax.cosine_decay_schedule(0.02, 10), **HP)
    state, grads = tx.init(params), grad(params, *batch(0))
    update = jax.jit(tx.update)
    update(grads, state, params)  # compile outside the guard
    with jax.transfer_guard("disallow"):
        updates, state = update(grads, state, params)
    assert int(state.game.count) == 1


def test_state_is_a_pytree_of_arrays_that_pickles_and_resumes():
    params = mlp_params()
    tx = neat.optax.ng_adam(0.02, **HP)
    _, state = train(tx, params, 3)
    assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(state))
    restored = pickle.loads(pickle.dumps(state))
    grads = grad(params, *batch(5))
    update = jax.jit(tx.update)
    assert_trees_close(update(grads, restored, params), update(grads, state, params), rtol=0, atol=0)


def test_bad_input_raises_clear_errors():
    params = mlp_params()
    with pytest.raises(ValueError, match="gamma"):
        neat.optax.ng_adam(0.1, gamma=2.0)
    with pytest.raises(ValueError, match="step_bounds"):
        neat.optax.ng_adam(0.1, step_bounds=(2.0, 3.0))
    with pytest.raises(ValueError, match="eps_root"):
        neat.optax.ng_adam(0.1, eps_root=1e-8)
    tx = neat.optax.ng_adam(0.1)
    state = tx.init(params)
    with pytest.raises(ValueError, match="needs the parameters"):
        tx.update(params, state)
    with pytest.raises(ValueError, match="pytree does not match"):
        tx.update({"other": jnp.zeros(3)}, state, params)
    with pytest.raises(ValueError, match="players"):
        neat.optax.ng_adam(0.1, players=[[0, 1]]).init(params)
    with pytest.raises(TypeError, match=r"params\['step'\] has dtype int32"):
        tx.init({"w": jnp.zeros(3), "step": jnp.zeros((), jnp.int32)})

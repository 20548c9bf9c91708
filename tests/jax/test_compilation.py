"""A jitted ``update`` compiles once: the state it returns has ``init``'s avals and shardings."""

import jax
import optax
import pytest

import neat.optax
from tests.jax.models import assert_same_placement, batch, compilations, grad, mlp_params

HP = dict(gamma=1.0, zeta=0.2, leak=0.05, weight_decay=0.01)


def _params(committed=True):
    """The model's parameters, committed to the first device or not (``init``'s outputs, as a jitted
    function's, are uncommitted). The state follows them: committed exactly when they are, so the
    outputs of a jitted step (committed exactly when its inputs are) match its inputs from the first
    call. Parameters committed after ``init`` would make the second step compile again (optax.adamw's
    too: its ``count`` is always uncommitted)."""
    params = mlp_params()
    return jax.device_put(params, jax.devices()[0]) if committed else params


def _compilations_of_steps(step, params, state, count=3):
    """Traces and compilations of ``count`` calls of the jitted ``step``, each on the previous
    call's outputs; and the last state."""
    grads = grad(params, *batch(0))
    jax.block_until_ready((params, grads))
    with compilations() as counts:
        for _ in range(count):
            params, state = step(params, state, grads)
    return counts, state


@pytest.mark.parametrize(
    "tx",
    [
        neat.optax.ng_adam(0.02, **HP),
        neat.optax.ng_adam(optax.cosine_decay_schedule(0.02, 10), **HP),
        optax.chain(optax.clip_by_global_norm(1.0), neat.optax.ng_adam(0.02, **HP)),
    ],
    ids=["constant", "schedule", "chain"],
)
@pytest.mark.parametrize("donate", [False, True])
@pytest.mark.parametrize("committed", [True, False], ids=["committed", "uncommitted"])
def test_the_jitted_step_compiles_once(tx, donate, committed):
    params = _params(committed)
    state = tx.init(params)

    def train_step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    step = jax.jit(train_step, donate_argnums=(0, 1) if donate else ())
    counts, new_state = _compilations_of_steps(step, params, state)
    assert counts == {"traces": 1, "compiles": 1}
    assert_same_placement(new_state, tx.init(params))  # a fresh one: donation deleted the first


def test_traced_hyperparameters_compile_once():
    """``inject_hyperparams``: optax's own fields (``count``, ``hyperparams``) start uncommitted, as for
    ``optax.adamw`` (whose jitted step compiles twice for it); committed here, the rest is NEAT's."""
    params = _params()
    tx = optax.inject_hyperparams(neat.optax.ng_adam)(learning_rate=0.02, **HP)
    state = tx.init(params)
    device = jax.devices()[0]
    state = state._replace(
        count=jax.device_put(state.count, device), hyperparams=jax.device_put(state.hyperparams, device)
    )

    def train_step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    counts, new_state = _compilations_of_steps(jax.jit(train_step, donate_argnums=(0, 1)), params, state)
    assert counts == {"traces": 1, "compiles": 1}
    assert_same_placement(new_state.inner_state, tx.init(params).inner_state)


def test_update_alone_compiles_once_and_returns_init_avals():
    params = _params()
    tx = neat.optax.ng_adam(0.02, **HP)
    state = tx.init(params)
    update = jax.jit(tx.update)
    counts, state = _compilations_of_steps(lambda p, s, g: (p, update(g, s, p)[1]), params, state)
    assert counts == {"traces": 1, "compiles": 1}
    assert_same_placement(state, tx.init(params))

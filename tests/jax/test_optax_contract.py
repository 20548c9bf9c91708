"""neat.optax honours optax's contract beyond AliasTest: adamw's signature, defaults and ``mask``, the
composable ``scale_by_ng_adam``, a traced ``mu``, complex parameters (SPEC: their real and
imaginary parts), empty pytrees, ``tree.map_params``."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import neat.optax
from tests.jax.models import assert_trees_close, batch, grad, mlp_params, train

GAME = dict(gamma=1.0, zeta=0.2, leak=0.05)


def test_signature_and_defaults_are_optax_adamw_s():
    ours, theirs = (inspect.signature(f).parameters for f in (neat.optax.ng_adam, optax.adamw))
    assert list(ours)[:5] == list(theirs)[:5] == ["learning_rate", "b1", "b2", "eps", "eps_root"]
    assert ours["learning_rate"].default is inspect.Parameter.empty
    for name in ("b1", "b2", "eps", "eps_root", "weight_decay", "mask"):
        assert ours[name].default == theirs[name].default, name


@pytest.mark.parametrize(
    "mask",
    [
        {"params": {"Dense_0": {"bias": False, "kernel": True}, "Dense_1": True}},  # a prefix of the params
        lambda params: jax.tree.map(lambda p: p.ndim > 1, params),  # decay the kernels only
    ],
    ids=["pytree", "callable"],
)
def test_weight_decay_mask_is_optax_adamw_s(mask):
    params = mlp_params()
    kwargs = dict(weight_decay=0.5, mask=mask)
    ours, _ = train(neat.optax.ng_adam(0.02, gamma=0.0, zeta=0.0, **kwargs), params, 10)
    theirs, _ = train(optax.adamw(0.02, **kwargs), params, 10)
    assert_trees_close(ours, theirs)
    unmasked, _ = train(optax.adamw(0.02, weight_decay=0.5), params, 10)
    assert not np.allclose(unmasked["params"]["Dense_0"]["bias"], theirs["params"]["Dense_0"]["bias"])


def test_weight_decay_may_be_a_schedule():
    params = mlp_params()
    schedule = optax.linear_schedule(0.5, 0.0, 10)
    ours, _ = train(neat.optax.ng_adam(0.02, gamma=0.0, zeta=0.0, weight_decay=schedule), params, 6)
    theirs, _ = train(optax.adamw(0.02, weight_decay=schedule), params, 6)
    assert_trees_close(ours, theirs)


def test_chain_of_scale_by_ng_adam_decay_and_learning_rate_is_ng_adam_in_float64():
    """``θ − η(λd + ωθ)`` (optax's chain) and ``θ(1 − ηω) − ηλd`` (SPEC step 9) in float64."""
    with jax.enable_x64(True):
        params = jax.tree.map(lambda p: p.astype(jnp.float64), mlp_params())
        hp = dict(b1=0.8, b2=0.95, eps=1e-6, **GAME)
        chained = optax.chain(
            neat.optax.scale_by_ng_adam(**hp), optax.add_decayed_weights(0.1), optax.scale_by_learning_rate(0.02)
        )
        ours, state = train(chained, params, 10)
        direct, direct_state = train(neat.optax.ng_adam(0.02, weight_decay=0.1, **hp), params, 10)
        assert_trees_close(ours, direct, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(state[0].game.log_step, direct_state.game.log_step, rtol=1e-11)
        assert np.any(np.asarray(direct_state.game.log_step) != 0)  # the game played


def test_scale_by_ng_adam_needs_no_params_and_keeps_none_leaves():
    params = mlp_params()
    tx = neat.optax.scale_by_ng_adam(**GAME)
    grads = grad(params, *batch(0))
    grads["params"]["Dense_0"]["bias"] = None
    updates, state = jax.jit(tx.update)(grads, tx.init(params))
    assert updates["params"]["Dense_0"]["bias"] is None
    assert int(state.game.tensor_count[0]) == 0 and int(state.game.count) == 1


def test_inject_hyperparams_traces_mu_and_solves_s_inside_the_step():
    """Every numeric hyperparameter, ``mu`` too, injected; ``init`` and ``update`` jitted: the numbers of
    the plain optimizer with that ``mu``, and a ``mu`` changed in the state is used from the next step."""
    params = mlp_params()
    injected = optax.inject_hyperparams(neat.optax.ng_adam)(0.02, mu=3.0, **GAME)
    state = jax.jit(injected.init)(params)
    assert {"mu", "gamma", "zeta", "b1", "eps_root", "weight_decay"} <= set(state.hyperparams)
    update = jax.jit(injected.update)
    plain = {mu: neat.optax.ng_adam(0.02, mu=mu, **GAME) for mu in (3.0, 0.25)}
    plain_state = plain[3.0].init(params)
    ours, theirs = params, params
    for step in range(6):
        mu = 3.0 if step < 3 else 0.25
        if step == 3:  # the plain optimizer's S is in its state's tables (a Python mu: S fixed at init)
            state.hyperparams["mu"] = jnp.asarray(0.25)
            plain_state = plain_state._replace(tables=plain[0.25].init(params).tables)
        grads = grad(ours, *batch(step))
        delta, state = update(grads, state, ours)
        plain_delta, plain_state = jax.jit(plain[mu].update)(grads, plain_state, theirs)
        ours, theirs = optax.apply_updates(ours, delta), optax.apply_updates(theirs, plain_delta)
        assert_trees_close(ours, theirs)
    np.testing.assert_allclose(state.inner_state.game.log_step, plain_state.game.log_step, rtol=1e-5, atol=1e-7)
    smoothing = np.linalg.inv(np.eye(2) + 0.25 * np.array([[1.0, -1.0], [-1.0, 1.0]]))
    np.testing.assert_allclose(state.inner_state.tables.weights, smoothing, rtol=1e-6)


def test_a_traced_mu_with_none_gradients_raises_a_clear_error():
    params = mlp_params()
    tx = neat.optax.ng_adam(0.02, mu=jnp.asarray(1.0))
    grads = grad(params, *batch(0))
    grads["params"]["Dense_0"]["bias"] = None
    with pytest.raises(ValueError, match="static_args=\\('mu',\\)"):
        tx.update(grads, tx.init(params), params)


def _as_complex(tree):
    return jax.tree.map(lambda p: jax.lax.complex(p, 0.5 * p[::-1] if p.ndim else -p), tree)


def _complex_loss(params, x, y):
    """A real loss of complex parameters (the MLP's layers on the real and imaginary parts)."""
    real = jax.tree.map(jnp.real, params)
    imag = jax.tree.map(jnp.imag, params)
    from tests.jax.models import loss

    return loss(real, x, y) + 0.5 * loss(imag, x, -y)


complex_grad = jax.jit(lambda p, x, y: jax.tree.map(jnp.conj, jax.grad(_complex_loss)(p, x, y)))


def _real_view(tree):
    return jax.tree.map(lambda p: jnp.stack([p.real, p.imag], axis=-1), tree)


@pytest.mark.parametrize("game", [GAME, dict(gamma=0.0, zeta=0.0)], ids=["game", "adamw"])
def test_complex_parameters_are_their_real_and_imaginary_parts(game):
    """SPEC "Objects": a complex leaf is the real leaf of its parts (``view_as_real``), gradient,
    moments and game statistics included; with ``gamma = zeta = 0`` that is ``optax.adamw`` on the
    real view (Adam per real component, as ``torch.optim.AdamW``; optax.adamw on the complex leaves
    itself takes ``|g|²`` per complex element, so it differs)."""
    params = _as_complex(mlp_params())

    def real_grads(step, real_params):
        z = jax.tree.map(lambda r: jax.lax.complex(r[..., 0], r[..., 1]), real_params)
        return _real_view(complex_grad(z, *batch(step)))

    tx = neat.optax.ng_adam(0.02, weight_decay=0.01, **game)
    ours, state = train(tx, params, 8, lambda step, p: complex_grad(p, *batch(step)))
    assert all(leaf.dtype == jnp.complex64 for leaf in jax.tree.leaves((ours, state.exp_avg, state.exp_avg_sq)))
    reference = tx if game is GAME else optax.adamw(0.02, weight_decay=0.01)
    theirs, _ = train(reference, _real_view(params), 8, real_grads)
    assert_trees_close(_real_view(ours), theirs)


def test_empty_pytree_and_map_params():
    tx = neat.optax.ng_adam(0.02)
    state = tx.init({})
    updates, state = jax.jit(tx.update)({}, state, {})
    assert updates == {} and int(state.game.count) == 1
    params = mlp_params()
    state = tx.init(params)
    mapped = optax.tree.map_params(tx, lambda p: p + 1.0, state)
    assert_trees_close(mapped.exp_avg, jax.tree.map(jnp.ones_like, params))
    assert_trees_close(mapped.game, state.game)


def test_update_accepts_extra_arguments():
    params = mlp_params()
    tx = neat.optax.ng_adam(0.02)
    updates, _ = tx.update(grad(params, *batch(0)), tx.init(params), params, value=jnp.ones(()), other=1)
    assert jax.tree.structure(updates) == jax.tree.structure(params)

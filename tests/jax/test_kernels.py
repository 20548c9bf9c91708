"""The JAX fast path (``neat.backends.jax_backend.JaxKernels``) gives the numbers of ``neat.kernels.GENERIC``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neat
from neat import functional
from neat.backends.jax_backend import JaxKernels
from neat.conformance.golden import load_all
from neat.kernels import GENERIC
from neat.plugins import plugin_manager

PROBLEMS = load_all()
STEPS = 12  # covers the golden "skips" problem's non-finite steps 0, 7 and 8


def _run(problem, kernels):
    """``STEPS`` jitted float32 steps of ``problem`` with ``kernels``; every state after each step."""
    opt = neat.ng_adam(**problem.hyperparameters)
    params = [jnp.asarray(p, jnp.float32) for p in problem.params]
    state = opt.init(params, problem.players, problem.weights)
    step = jax.jit(lambda p, g, s: functional.step(p, g, s, opt.config, kernels=kernels))
    history = []
    for grads in problem.grads[:STEPS]:
        params, state = step(params, [jnp.asarray(g, jnp.float32) for g in grads], state)
        history.append((params, state))
    return history


def test_the_hook_gives_the_fast_path_to_jax_numpy_only():
    assert isinstance(plugin_manager().hook.neat_step_kernels(xp=jnp), JaxKernels)
    assert not isinstance(plugin_manager().hook.neat_step_kernels(xp=np), JaxKernels)


@pytest.mark.parametrize("problem", PROBLEMS, ids=[p.name for p in PROBLEMS])
def test_fast_path_matches_generic_on_golden_problems(problem):
    for (fast_params, fast), (params, generic) in zip(_run(problem, JaxKernels()), _run(problem, GENERIC)):
        np.testing.assert_array_equal(fast.count, generic.count)
        np.testing.assert_array_equal(fast.skipped, generic.skipped)
        for mine, theirs in zip([*fast_params, *fast.exp_avg, *fast.exp_avg_sq],
                                [*params, *generic.exp_avg, *generic.exp_avg_sq]):
            np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-7)
        for key in ("log_step", "alignment", "conflict"):
            np.testing.assert_allclose(getattr(fast, key), getattr(generic, key), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("eps", [1e-8, 0.0])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_gradient_leaves_everything_bitwise_unchanged(bad, eps):
    problem = PROBLEMS[0]
    opt = neat.ng_adam(**{**problem.hyperparameters, "eps": eps})
    params = [jnp.asarray(p, jnp.float32) for p in problem.params]
    state = opt.init(params, problem.players, problem.weights)
    step = jax.jit(lambda p, g, s: functional.step(p, g, s, opt.config, kernels=JaxKernels()))
    for grads in problem.grads[:3]:
        params, state = step(params, [jnp.asarray(g, jnp.float32) for g in grads], state)
    grads = [jnp.asarray(g, jnp.float32) for g in problem.grads[3]]
    grads[2] = grads[2].at[1, 0].set(bad)
    stats, finite = JaxKernels().statistics(jnp, grads, state.exp_avg, state.exp_avg_sq,
                                            *_previous(state, opt.config))
    assert not bool(finite)
    new_params, new_state = step(params, grads, state)
    for before, after in zip([*params, *state.exp_avg, *state.exp_avg_sq, state.count, state.log_step],
                             [*new_params, *new_state.exp_avg, *new_state.exp_avg_sq, new_state.count,
                              new_state.log_step]):
        assert np.asarray(after).tobytes() == np.asarray(before).tobytes()
    assert int(new_state.skipped) == int(state.skipped) + 1


def _previous(state, config):
    from neat.kernels import BiasCorrection

    dtype = state.smoothing.dtype
    return BiasCorrection.at(jnp, state.count, config.betas, config.eps, dtype), dtype


def test_statistics_match_generic():
    problem = PROBLEMS[1]
    grads = [jnp.asarray(g, jnp.float32) for g in problem.grads[5]]
    moments = [jnp.asarray(g, jnp.float32) * 0.1 for g in problem.grads[4]]
    squares = [jnp.asarray(g, jnp.float32) ** 2 for g in problem.grads[3]]
    previous = _previous(neat.ng_adam().init(grads)._replace(count=jnp.asarray(4, jnp.int32)), neat.ng_adam().config)
    fast, fast_finite = JaxKernels().statistics(jnp, grads, moments, squares, *previous)
    generic, generic_finite = GENERIC.statistics(jnp, grads, moments, squares, *previous)
    np.testing.assert_allclose(fast, generic, rtol=1e-5)
    assert bool(fast_finite) and bool(generic_finite)


def test_inplace_is_refused_with_a_clear_error():
    x = [jnp.ones(3)]
    with pytest.raises(TypeError, match="immutable"):
        JaxKernels().update(jnp, x, x, x, x, None, None, None, (0.9, 0.999), jnp.asarray(True), inplace=True)

"""SPEC step 0: a step with a NaN or infinite gradient is skipped, state and all."""

import numpy as np
import pytest

import neat

from .problems import random_problem


def _snapshot(params, state):
    return [p.copy() for p in params], [np.array(x, copy=True) for x in _state_arrays(state)]


def _state_arrays(state):
    """Every GameState field (``skipped`` second), then the moments."""
    return [*state.game, *state.exp_avg, *state.exp_avg_sq]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("at_step", [0, 5])
def test_non_finite_gradient_skips_the_step(bad, at_step):
    params, players, weights, hp, grads = random_problem(1, num_steps=at_step + 1)
    opt = neat.ng_adam(**hp)
    state = opt.init(params, players=players, graph=weights)
    for step_grads in grads[:at_step]:
        params, state = opt.step(params, step_grads, state)
    before_params, before_state = _snapshot(params, state)
    poisoned = [g.copy() for g in grads[at_step]]
    poisoned[-1] = np.full_like(poisoned[-1], 1.0)
    poisoned[-1].reshape(-1)[0] = bad
    with np.errstate(invalid="ignore", over="ignore"):
        new_params, new_state = opt.step(params, poisoned, state)
    for old, new in zip(before_params, new_params):
        np.testing.assert_array_equal(old, new)
    after = _state_arrays(new_state)
    assert int(new_state.game.skipped) == int(before_state[1]) + 1
    assert int(new_state.game.count) == int(before_state[0])
    for index, (old, new) in enumerate(zip(before_state, after)):
        if index != 1:
            np.testing.assert_array_equal(old, new)
    info = opt.diagnostics(new_state)
    assert int(info["skipped_steps"]) == 1


def test_skipped_step_is_invisible_to_later_steps():
    params, players, weights, hp, grads = random_problem(2, num_steps=12)
    opt = neat.ng_adam(**hp)
    clean_state = opt.init(params, players=players, graph=weights)
    clean = params
    for g in grads:
        clean, clean_state = opt.step(clean, g, clean_state)
    skipped_state = opt.init(params, players=players, graph=weights)
    skipped = params
    for t, g in enumerate(grads):
        if t == 4:
            with np.errstate(invalid="ignore"):
                skipped, skipped_state = opt.step(skipped, [x * np.nan for x in g], skipped_state)
        skipped, skipped_state = opt.step(skipped, g, skipped_state)
    for a, b in zip(clean, skipped):
        np.testing.assert_array_equal(a, b)
    assert int(skipped_state.game.skipped) == 1 and int(skipped_state.game.count) == len(grads)


def test_non_finite_guard_has_no_host_sync_under_jit():
    jax = pytest.importorskip("jax", reason="jax not installed (optional framework)")
    jnp = jax.numpy
    opt = neat.ng_adam(lr=0.1)
    params = [jnp.ones((3,), dtype=jnp.float32), jnp.ones((2, 2), dtype=jnp.float32)]
    state = opt.init(params)
    step = jax.jit(opt.step)
    good = [jnp.full((3,), 0.5, dtype=jnp.float32), jnp.full((2, 2), -0.5, dtype=jnp.float32)]
    params, state = step(params, good, state)
    bad = [jnp.full((3,), jnp.nan, dtype=jnp.float32), good[1]]
    new_params, new_state = step(params, bad, state)
    for old, new in zip(params, new_params):
        np.testing.assert_array_equal(np.asarray(old), np.asarray(new))
    assert int(new_state.game.skipped) == 1 and int(new_state.game.count) == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_overflowing_g_skips_in_the_statistics_dtype(dtype):
    """SPEC v2 step 0: finite gradients whose ``G_i`` overflows the statistics dtype skip the step.
    Entries of 1e19 are finite in float32 and their squares (1e38) too, but ten of them sum to 1e39:
    inf in float32, so a float32 run skips; in float64 the same step is taken."""
    opt = neat.ng_adam(lr=0.1)
    params = [np.ones(10, dtype=dtype), np.ones(3, dtype=dtype)]
    state = opt.init(params)
    grads = [np.full(10, 1e19, dtype=dtype), np.ones(3, dtype=dtype)]
    assert np.all(np.isfinite(grads[0])) and np.isfinite(grads[0][0] * grads[0][0])
    with np.errstate(over="ignore", invalid="ignore"):
        new_params, new_state = opt.step(params, grads, state)
    skipped = dtype == np.float32
    assert int(new_state.game.skipped) == int(skipped) and int(new_state.game.count) == int(not skipped)
    assert all(np.array_equal(a, b) for a, b in zip(params, new_params)) == skipped
    assert all(np.all(np.isfinite(p)) for p in new_params)

"""The JAX fast path (``neat.backends.jax_backend.JaxKernels``) gives the numbers of ``neat.kernels.GENERIC``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neat
from neat import functional
from neat.backends.jax_backend import JaxKernels
from neat.conformance.golden import load_all
from neat.kernel_selection import select_kernels
from neat.kernels import GENERIC, Statistics, TensorScalars
from neat.topology import Topology

PROBLEMS = load_all()
STEPS = 24  # covers the non-finite steps 0, 7, 8 ("skips"), 20 ("inactive"), 3, 17, 18 ("overflow")


def _run(problem, kernels):
    """``STEPS`` jitted float32 steps of ``problem`` with ``kernels``; every state after each step.
    Each run has its own topology (its sub-games' tables are built inside its own traces)."""
    opt = neat.ng_adam(**problem.hyperparameters)
    topology = Topology.build(len(problem.params), problem.players, problem.weights, mu=opt.config.mu)
    params = [jnp.asarray(p, jnp.float32) for p in problem.params]
    state = functional.init_state(params, topology)
    step = jax.jit(lambda p, g, s: functional.step(p, g, s, opt.config, kernels=kernels, topology=topology))
    history = []
    for grads in problem.grads[:STEPS]:
        with np.errstate(over="ignore"):  # "overflow": its huge float64 gradients are ±inf in float32
            grads = [None if g is None else jnp.asarray(np.asarray(g, np.float32)) for g in grads]
        params, state = step(params, grads, state)
        history.append((params, state))
    return history


def test_the_jax_kernels_are_the_default_for_jax_arrays_only():
    assert isinstance(select_kernels(jnp, [jnp.zeros(3)]), JaxKernels)
    assert select_kernels(jnp, [jnp.zeros(3)], "jax").name == "jax"
    assert not isinstance(select_kernels(np, [np.zeros(3)]), JaxKernels)
    with pytest.raises(ValueError, match="JAX arrays only"):
        select_kernels(np, [np.zeros(3)], "jax")


@pytest.mark.parametrize("problem", PROBLEMS, ids=[p.name for p in PROBLEMS])
def test_fast_path_matches_generic_on_golden_problems(problem):
    for (fast_params, fast), (params, generic) in zip(_run(problem, "jax"), _run(problem, GENERIC)):
        for key in ("count", "skipped", "tensor_count"):
            np.testing.assert_array_equal(getattr(fast.game, key), getattr(generic.game, key))
        for mine, theirs in zip(
            [*fast_params, *fast.exp_avg, *fast.exp_avg_sq], [*params, *generic.exp_avg, *generic.exp_avg_sq]
        ):
            # float32 rounding differs between the two arrangements and the game amplifies it over the
            # steps: an entry passing near 0 is compared at the scale of its tensor (max seen: 1.6e-6).
            np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-5 * float(np.max(np.abs(theirs))))
        for key in ("log_step", "alignment", "conflict"):
            np.testing.assert_allclose(getattr(fast.game, key), getattr(generic.game, key), rtol=1e-5, atol=1e-6)


def _pass_inputs(eps=1e-8, betas="scalar"):
    """Gradients, moments (with zeros in ``v``) and per-tensor scalars of a mid-run step; the
    moments' coefficients one Python float each (``betas="scalar"``) or one per tensor."""
    problem = PROBLEMS[1]
    grads = [jnp.asarray(g, jnp.float32) for g in problem.grads[5]]
    moments = [jnp.asarray(g, jnp.float32) * 0.1 for g in problem.grads[4]]
    squares = [jnp.asarray(g, jnp.float32) ** 2 for g in problem.grads[3]]
    # With eps = 0, √v + shift = 0 at entry 0 of tensor 1 in both passes: u = 0 and direction = 0 there.
    grads[1], squares[1] = grads[1].at[0].set(0.0), squares[1].at[0].set(0.0)
    count = len(grads)

    def column(*values):
        return jnp.asarray(np.resize(values, count), jnp.float32)

    scalars = TensorScalars(
        prev_scale=column(0.0, 1.3, 0.7),
        prev_shift=column(1.0, eps, 2 * eps),
        nge=column(0.0, -0.4, 0.9),
        decay=column(0.999, 1.0),
        step=column(0.01, 0.02, 0.005),
        shift=column(eps, 3 * eps),
        **_moment_coefficients(betas, column),
    )
    return grads, moments, squares, scalars


def _moment_coefficients(betas="scalar", column=None):
    """``β1, 1 − β1, β2, 1 − β2``: Python floats (``betas="scalar"``), or per-tensor columns made by ``column``."""
    if betas == "scalar":
        beta1, beta2 = 0.9, 0.99
    else:
        beta1, beta2 = column(0.9, 0.8, 0.95), column(0.99, 0.9, 0.999)
    return dict(beta1=beta1, weight1=1.0 - beta1, beta2=beta2, weight2=1.0 - beta2)


@pytest.mark.parametrize("eps", [1e-8, 0.0])
def test_statistics_match_generic_and_leave_the_direction_to_the_update(eps):
    grads, moments, squares, scalars = _pass_inputs(eps)
    fast = jax.jit(lambda *a: JaxKernels().statistics(jnp, *a, jnp.float32))(grads, moments, squares, scalars)
    generic = GENERIC.statistics(jnp, grads, moments, squares, scalars, jnp.float32)
    assert fast.direction is None and fast.sums.shape == (len(grads), 3) and fast.sums.dtype == jnp.float32
    np.testing.assert_allclose(fast.sums, generic.sums, rtol=1e-5)
    assert np.all(np.isfinite(generic.sums))


def test_statistics_of_a_large_tensor_are_accurate():
    """Over a million float32 entries a single running sum loses about 1e-3 (more for larger tensors);
    the blocked sums stay within float32 rounding of a float64 reference (head and tail both)."""
    rng = np.random.default_rng(0)
    shape = (1031, 1019)  # 1,050,589 entries: not a multiple of the lanes
    g, m = (rng.normal(size=shape).astype(np.float32) for _ in range(2))
    v = (rng.normal(size=shape) ** 2).astype(np.float32)
    scalars = TensorScalars(
        *(jnp.asarray([value], jnp.float32) for value in (0.7, 1e-3, 0, 1, 0, 0)), *_moment_coefficients().values()
    )
    fast = jax.jit(lambda *a: JaxKernels().statistics(jnp, *a, jnp.float32).sums)([g], [m], [v], scalars)
    u = m.astype(np.float64) * 0.7 / (np.sqrt(v.astype(np.float64)) + 1e-3)
    g64 = g.astype(np.float64)
    expected = [np.sum(g64 * g64), np.sum(g64 * u), np.sum(u * u)]
    np.testing.assert_allclose(np.asarray(fast[0], np.float64), expected, rtol=1e-5)


@pytest.mark.parametrize("eps", [1e-8, 0.0])
@pytest.mark.parametrize("explicit_direction", [False, True])
@pytest.mark.parametrize("betas", ["scalar", "per-tensor"])
def test_update_matches_generic_with_either_kind_of_statistics(eps, explicit_direction, betas):
    grads, moments, squares, scalars = _pass_inputs(eps, betas)
    statistics = GENERIC.statistics(jnp, grads, moments, squares, scalars, jnp.float32)
    if not explicit_direction:
        statistics = Statistics(statistics.sums, None)
    params = [g * 3.0 + 1.0 for g in grads]
    finite = jnp.asarray(True)

    @jax.jit
    def fast(params, statistics):
        return JaxKernels().update(jnp, params, grads, moments, squares, statistics, scalars, finite)

    expected = GENERIC.update(jnp, params, grads, moments, squares, statistics, scalars, finite)
    for mine, theirs in zip(jax.tree.leaves(fast(params, statistics)), jax.tree.leaves(expected)):
        assert np.all(np.isfinite(mine))
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-7)


def test_update_is_a_bitwise_no_op_when_the_core_says_not_finite():
    grads, moments, squares, scalars = _pass_inputs()
    params = [g * 3.0 + 1.0 for g in grads]
    statistics = JaxKernels().statistics(jnp, grads, moments, squares, scalars, jnp.float32)
    update = jax.jit(
        lambda finite: JaxKernels().update(jnp, params, grads, moments, squares, statistics, scalars, finite)
    )
    for before, after in zip([*params, *moments, *squares], jax.tree.leaves(update(jnp.asarray(False)))):
        assert np.asarray(after).tobytes() == np.asarray(before).tobytes()
    assert any(not np.array_equal(a, b) for a, b in zip(params, update(jnp.asarray(True))[0]))


@pytest.mark.parametrize("eps", [1e-8, 0.0])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_gradient_leaves_everything_bitwise_unchanged(bad, eps):
    problem = PROBLEMS[1]
    opt = neat.ng_adam(**{**problem.hyperparameters, "eps": eps})
    params = [jnp.asarray(p, jnp.float32) for p in problem.params]
    state = opt.init(params, problem.players, problem.weights)
    step = jax.jit(lambda p, g, s: functional.step(p, g, s, opt.config, kernels="jax"))
    for grads in problem.grads[:3]:
        params, state = step(params, [jnp.asarray(g, jnp.float32) for g in grads], state)
    grads = [jnp.asarray(g, jnp.float32) for g in problem.grads[3]]
    grads[2] = grads[2].at[1, 0].set(bad)
    new_params, new_state = step(params, grads, state)
    unchanged = state.game._replace(skipped=None)
    for before, after in zip(
        jax.tree.leaves([params, state.exp_avg, state.exp_avg_sq, unchanged]),
        jax.tree.leaves([new_params, new_state.exp_avg, new_state.exp_avg_sq, new_state.game._replace(skipped=None)]),
    ):
        assert np.asarray(after).tobytes() == np.asarray(before).tobytes()
    assert int(new_state.game.skipped) == int(state.game.skipped) + 1


def test_inplace_is_refused_with_a_clear_error():
    grads, moments, squares, scalars = _pass_inputs()
    with pytest.raises(TypeError, match="immutable"):
        JaxKernels().update(jnp, grads, grads, moments, squares, None, scalars, jnp.asarray(True), inplace=True)

"""The ``"jax_ffi"`` kernel set (XLA FFI custom calls into numba loops) gives the numbers of
``neat.kernels.GENERIC`` and of the ``"jax"`` set.

The set runs on a single CPU device only, and this test session simulates several
(``tests/conftest.py``): each check runs in a fresh single-device interpreter
(``_in_subprocess``), float64 ones with ``JAX_ENABLE_X64=1``.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("numba", reason="numba is not installed (optional: pip install 'neat-nash[cpu]')")

ROOT = Path(__file__).resolve().parents[2]
SHAPES = [(3, 5), (40000,), (7,), (2, 3, 4)]  # one tensor of several blocks (BLOCK = 16384)
#: With a tensor of 37 blocks: the passes run on numba's thread pool (PARALLEL_ELEMENTS = 32 blocks).
LARGE_SHAPES = [(3, 5), (600000,), (7,), (2, 3, 4)]


def _in_subprocess(check: str, x64: bool = False) -> None:
    """Run ``check()`` of this module in a single-device interpreter; fail with its output."""
    env = dict(
        os.environ,
        XLA_FLAGS="",
        JAX_PLATFORMS="cpu",
        JAX_ENABLE_X64="1" if x64 else "0",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    code = f"from tests.jax.test_ffi_kernels import {check}; {check}()"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _pass_inputs(dtypes, rng, shapes=SHAPES):
    """``θ, g, m, v`` per tensor (zeros in ``m`` and ``v``; a fresh tensor with ``m = v = 0`` and
    ``scale = 0``) and mid-run per-tensor scalars in the statistics dtype."""
    import jax.numpy as jnp

    from neat.kernels import TensorScalars

    def draw(scale, shape, dtype, positive=False):
        values = rng.normal(size=shape) * scale
        return jnp.asarray(np.abs(values) if positive else values, dtype)

    params = [draw(1.0, s, d) for s, d in zip(shapes, dtypes)]
    grads = [draw(1e-2, s, d) for s, d in zip(shapes, dtypes)]
    exp_avg = [draw(1e-3, s, d) for s, d in zip(shapes, dtypes)]
    exp_avg_sq = [draw(1e-5, s, d, positive=True) for s, d in zip(shapes, dtypes)]
    exp_avg[0], exp_avg_sq[0] = exp_avg[0].at[0].set(0.0), exp_avg_sq[0].at[0].set(0.0)
    exp_avg[2], exp_avg_sq[2] = jnp.zeros_like(exp_avg[2]), jnp.zeros_like(exp_avg_sq[2])
    stats_dtype = jnp.float64 if any(jnp.dtype(d) == jnp.float64 for d in dtypes) else jnp.float32

    def column(*values):
        return jnp.asarray(values, stats_dtype)

    scalars = TensorScalars(
        prev_scale=column(0.9, 1.1, 0.0, 0.7),
        prev_shift=column(1e-8, 2e-8, 0.0, 1e-8),
        nge=column(0.1, -0.2, 0.3, 0.0),
        decay=column(0.999, 0.99, 1.0, 0.995),
        step=column(1e-3, 2e-3, 3e-3, 1e-3),
        shift=column(1e-8, 1e-8, 1e-8, 0.0),
        beta1=column(0.9, 0.8, 0.95, 0.9),  # each tensor's own β1, β2 (SPEC v2.1)
        weight1=1.0 - column(0.9, 0.8, 0.95, 0.9),
        beta2=0.95,  # one Python float for all tensors
        weight2=1.0 - 0.95,
    )
    return params, grads, exp_avg, exp_avg_sq, scalars, stats_dtype


def check_passes_match_generic(dtypes=("float32",) * 4, rtol=2e-6, shapes=SHAPES):
    """Both passes against GENERIC: sums to ``rtol`` (float64 accumulation against the dtype's own),
    ``θ, m, v`` to ``rtol`` (the same element arithmetic)."""
    import jax
    import jax.numpy as jnp

    from neat.kernel_selection import select_kernels
    from neat.kernels import GENERIC

    rng = np.random.default_rng(0)
    params, grads, exp_avg, exp_avg_sq, scalars, stats_dtype = _pass_inputs(dtypes, rng, shapes)
    kernels = select_kernels(jnp, params)
    assert kernels.name == "jax_ffi"
    mine = jax.jit(lambda g, m, v: kernels.statistics(jnp, g, m, v, scalars, stats_dtype).sums)(
        grads, exp_avg, exp_avg_sq
    )
    reference = GENERIC.statistics(jnp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype)
    assert mine.dtype == stats_dtype
    np.testing.assert_allclose(mine, reference.sums, rtol=rtol, atol=0)
    finite = jnp.asarray(True)
    update = jax.jit(lambda p, g, m, v: kernels.update(jnp, p, g, m, v, None, scalars, finite))
    results = update(params, grads, exp_avg, exp_avg_sq)
    expected = GENERIC.update(jnp, params, grads, exp_avg, exp_avg_sq, reference, scalars, finite)
    for role, (new, old) in enumerate(zip(results, expected)):
        for k, (a, b) in enumerate(zip(new, old)):
            assert a.dtype == b.dtype, (role, k)
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * float(jnp.max(jnp.abs(b))), err_msg=f"{role} {k}")
    assert not np.allclose(results[1][1], exp_avg[1])  # the step moved the moments


def check_float64_and_mixed_dtypes():
    check_passes_match_generic(("float64",) * 4, rtol=1e-12)
    check_passes_match_generic(("float64", "float32", "float64", "float32"), rtol=2e-6)


def check_passes_on_the_thread_pool_match_generic():
    check_passes_match_generic(("float64",) * 4, rtol=1e-12, shapes=LARGE_SHAPES)
    check_passes_match_generic(("float32",) * 4, rtol=2e-6, shapes=LARGE_SHAPES)


def check_skipped_step_is_a_no_op():
    """``finite`` false: ``θ, m, v`` come back unchanged, also when donated (updated in place)."""
    import jax
    import jax.numpy as jnp

    from neat.kernel_selection import select_kernels

    params, grads, exp_avg, exp_avg_sq, scalars, _ = _pass_inputs(("float32",) * 4, np.random.default_rng(1))
    kernels = select_kernels(jnp, params, "jax_ffi")
    expected = [np.asarray(x).copy() for x in [*params, *exp_avg, *exp_avg_sq]]
    update = jax.jit(lambda p, g, m, v, f: kernels.update(jnp, p, g, m, v, None, scalars, f), donate_argnums=(0, 2, 3))
    results = update(params, grads, exp_avg, exp_avg_sq, jnp.asarray(False))
    for got, want in zip([x for role in results for x in role], expected):
        np.testing.assert_array_equal(got, want)


def check_steps_match_jax_and_compile_once():
    """Ten jitted, donating ``functional.step``s with ``"jax_ffi"`` against ``"jax"`` (a non-finite
    gradient at step 4: a skipped step); ``neat.optax.ng_adam`` takes ``"jax_ffi"`` by default and its
    jitted step compiles once."""
    import jax
    import jax.numpy as jnp
    import optax

    import neat
    import neat.optax
    from neat import functional
    from neat.topology import Topology

    rng = np.random.default_rng(2)
    opt = neat.ng_adam(lr=1e-2, weight_decay=0.1)
    topology = Topology.build(len(SHAPES), [[0, 1], [2, 3]], None, mu=opt.config.mu)
    gradients = [[jnp.asarray(rng.normal(size=s) * 1e-2, jnp.float32) for s in SHAPES] for _ in range(10)]
    gradients[4][1] = gradients[4][1].at[3].set(jnp.inf)
    start, histories = [rng.normal(size=s) for s in SHAPES], {}
    for name in ("jax_ffi", "jax"):
        params = [jnp.asarray(x, jnp.float32) for x in start]
        state = functional.init_state(params, topology)
        step = jax.jit(
            lambda p, g, s, name=name: functional.step(p, g, s, opt.config, kernels=name), donate_argnums=(0,)
        )
        for grads in gradients:
            params, state = step(params, grads, state)
        histories[name] = (params, state)
    (mine, mine_state), (theirs, their_state) = histories["jax_ffi"], histories["jax"]
    np.testing.assert_array_equal(mine_state.game.skipped, their_state.game.skipped)
    assert int(mine_state.game.skipped) == 1
    for a, b in zip(
        [*mine, *mine_state.exp_avg, *mine_state.exp_avg_sq], [*theirs, *their_state.exp_avg, *their_state.exp_avg_sq]
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(b))))

    from tests.jax.models import batch, compilations, grad, mlp_params

    params = jax.device_put(mlp_params(), jax.devices()[0])  # committed, as the step's outputs are
    tx = neat.optax.ng_adam(0.02, weight_decay=0.01)
    state, grads = tx.init(params), grad(params, *batch(0))

    def train(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    train = jax.jit(train, donate_argnums=(0, 1))
    text = train.lower(params, state, grads).as_text()
    assert "neat_ffi_statistics_float32" in text and "neat_ffi_moments_float32" in text
    with compilations() as counts:
        for _ in range(3):
            params, state = train(params, state, grads)
    assert counts["compiles"] == 1
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(params))


def check_per_tensor_betas_follow_reference():
    """SPEC v2.1 in float64 (x64): jitted steps of ``"jax"`` and ``"jax_ffi"`` with each tensor's own
    ``lr``, ``weight_decay``, ``betas``, ``eps`` (``(K,)`` arrays, changing every step) and inactive
    tensors, against the float64 reference."""
    import jax
    import jax.numpy as jnp

    from neat import functional
    from neat.conformance import runner
    from neat.topology import Topology

    problem = runner.problems()["inactive"]
    topology = Topology.build(len(problem.params), problem.players, problem.weights, mu=problem.hyperparameters["mu"])
    config = functional.ng_adam(**problem.hyperparameters).config
    expected = runner.per_tensor_reference("inactive")

    def jitted_step(kernels):
        def step(params, grads, state, lr, weight_decay, beta1, beta2, eps):
            return functional.step(
                params,
                grads,
                state,
                config,
                lr=lr,
                weight_decay=weight_decay,
                betas=(beta1, beta2),
                eps=eps,
                kernels=kernels,
                topology=topology,
            )

        return jax.jit(step)

    for kernels in ("jax", "jax_ffi"):
        step = jitted_step(kernels)
        params = [jnp.asarray(p) for p in problem.params]
        state = functional.init_state(params, topology)
        worst = 0.0
        for index, grads in enumerate(problem.grads):
            values = runner.per_tensor_hyperparameters(problem, index)
            beta1, beta2 = (jnp.asarray(column) for column in zip(*values.pop("betas")))
            arrays = {key: jnp.asarray(value) for key, value in values.items()}
            grads = [None if g is None else jnp.asarray(g) for g in grads]
            params, state = step(params, grads, state, beta1=beta1, beta2=beta2, **arrays)
            for mine, want in zip(params, expected[index]):
                worst = max(worst, float(np.max(np.abs(np.asarray(mine) - want)) / np.max(np.abs(want))))
        assert params[0].dtype == jnp.float64 and worst <= 1e-10, (kernels, worst)


@pytest.mark.parametrize(
    "check, x64",
    [
        ("check_passes_match_generic", False),
        ("check_float64_and_mixed_dtypes", True),
        ("check_passes_on_the_thread_pool_match_generic", True),
        ("check_skipped_step_is_a_no_op", False),
        ("check_steps_match_jax_and_compile_once", False),
        ("check_per_tensor_betas_follow_reference", True),
    ],
)
def test_in_a_single_device_process(check, x64):
    _in_subprocess(check, x64)


def test_refused_with_several_devices_and_for_other_arrays():
    """This session simulates several CPU devices: the set names why it cannot run; ``"jax"`` is chosen."""
    import jax
    import jax.numpy as jnp

    from neat.kernel_selection import select_kernels

    if jax.device_count() == 1:
        pytest.skip("this session has a single device (the refusal needs several)")
    with pytest.raises(ValueError, match="single CPU device"):
        select_kernels(jnp, [jnp.zeros(3)], "jax_ffi")
    assert select_kernels(jnp, [jnp.zeros(3)]).name == "jax"
    with pytest.raises(ValueError, match="JAX arrays only"):
        select_kernels(np, [np.zeros(3)], "jax_ffi")

"""The CuPy backend plug-in: lazy import and hooks (always), fused kernels on a GPU (skipped without one)."""

import subprocess
import sys
import types

import array_api_compat
import array_api_compat.numpy
import numpy as np
import pytest

from neat.backends import cupy_backend
from neat.conformance.golden import load_all
from neat.inplace import NGAdam
from neat.kernel_selection import registered
from neat.kernels import GENERIC, TensorScalars
from neat.plugins import plugin_manager

GOLDEN = {problem.name: problem for problem in load_all()}
GPU_SKIP_REASON = cupy_backend.neat_backend_info().skip_reason()
requires_gpu = pytest.mark.skipif(
    GPU_SKIP_REASON is not None, reason=f"the CuPy path needs a CUDA GPU: {GPU_SKIP_REASON}"
)
TOLERANCE = {"float32": dict(rtol=2e-5, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-14)}


# --- plug-in wiring: runs everywhere -------------------------------------------------------------


def test_importing_neat_and_stepping_numpy_never_imports_cupy():
    code = (
        "import sys, numpy as np, neat\n"
        "from neat.inplace import NGAdam\n"
        "p = [np.zeros(3)]\n"
        "NGAdam(p).step([np.ones(3)])\n"
        "assert 'cupy' not in sys.modules, 'cupy was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_hooks_answer_only_for_cupy():
    assert cupy_backend.neat_array_namespace(array=np.zeros(2)) is None
    kernel_set = registered()["cupy"]
    assert kernel_set.kernels is cupy_backend.KERNELS and kernel_set.kernels.name == "cupy"
    assert "CuPy arrays only" in kernel_set.unsupported(array_api_compat.numpy, [np.zeros(2)])
    fake_cupy_namespace = types.ModuleType("array_api_compat.cupy")
    assert kernel_set.unsupported(fake_cupy_namespace, []) is None
    assert plugin_manager().get_plugin("cupy") is cupy_backend
    from neat.conformance import discovery

    assert "cupy" in [info.name for info in discovery.backends()]


def test_skip_reason_without_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    assert cupy_backend.neat_backend_info().skip_reason() == "cupy is not installed"


def test_skip_reason_without_a_device(monkeypatch):
    class CUDARuntimeError(RuntimeError):
        pass

    def no_driver():
        raise CUDARuntimeError("cudaErrorNoDevice")

    runtime = types.SimpleNamespace(CUDARuntimeError=CUDARuntimeError, getDeviceCount=no_driver)
    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime)))
    assert cupy_backend.neat_backend_info().skip_reason().startswith("no CUDA device")
    runtime.getDeviceCount = lambda: 0
    assert cupy_backend.neat_backend_info().skip_reason().startswith("no CUDA device")


# --- the CuPy path itself: needs a GPU -----------------------------------------------------------


def _cupy():
    import array_api_compat.cupy  # noqa: F401  (the namespace the tests pass as xp)
    import cupy

    return cupy


def _random_state(rng, shapes, dtype, count):
    """Random ``θ, g, m, v`` and per-tensor scalars of a step after ``count`` steps."""
    cupy = _cupy()
    xp = array_api_compat.cupy
    grads = [cupy.asarray(rng.normal(size=s).astype(dtype)) for s in shapes]
    params = [cupy.asarray(rng.normal(size=s).astype(dtype)) for s in shapes]
    exp_avg = [cupy.asarray((0.1 * rng.normal(size=s)).astype(dtype)) for s in shapes]
    exp_avg_sq = [cupy.asarray((0.01 * rng.random(size=s)).astype(dtype)) for s in shapes]
    stats_dtype = xp.float64 if dtype == "float64" else xp.float32
    k = len(shapes)

    def column(values):
        return xp.asarray(np.broadcast_to(values, (k,)), dtype=stats_dtype)

    beta1 = column(rng.uniform(0.8, 0.95, size=k))  # each tensor's own β1 (SPEC v2.1: param groups)
    prev_root = np.sqrt(1 - 0.99**count)
    root = np.sqrt(1 - 0.99 ** (count + 1))
    scalars = TensorScalars(
        prev_scale=column(prev_root / (1 - 0.9**count) if count else 0.0),
        prev_shift=column(1e-8 * prev_root),
        nge=column(rng.normal(size=k)),
        decay=column(1 - 1e-3 * rng.random(size=k)),
        step=column(0.01 * rng.random(size=k) * root / (1 - 0.9 ** (count + 1))),
        shift=column(1e-8 * root),
        beta1=beta1,
        weight1=1.0 - beta1,
        beta2=0.99,  # one Python float for every tensor
        weight2=1.0 - 0.99,
    )
    return params, grads, exp_avg, exp_avg_sq, scalars, stats_dtype


@requires_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("count", [0, 5])
def test_fused_kernels_match_generic(dtype, count):
    cupy, xp = _cupy(), array_api_compat.cupy
    shapes = [(300, 70), (7,), (), (129, 3, 5), (70_000,)]
    params, grads, m, v, scalars, stats_dtype = _random_state(np.random.default_rng(count), shapes, dtype, count)
    fused = cupy_backend.KERNELS.statistics(xp, grads, m, v, scalars, stats_dtype)
    generic = GENERIC.statistics(xp, grads, m, v, scalars, stats_dtype)
    np.testing.assert_allclose(cupy.asnumpy(fused.sums), cupy.asnumpy(generic.sums), **TOLERANCE[dtype])
    assert fused.direction is None

    finite = cupy.asarray(True)
    expected = GENERIC.update(xp, params, grads, m, v, generic, scalars, finite)
    copies = [[a.copy() for a in arrays] for arrays in (params, m, v)]
    result = cupy_backend.KERNELS.update(
        xp, copies[0], grads, copies[1], copies[2], fused, scalars, finite, inplace=True
    )
    for got_list, want_list, given in zip(result, expected, copies):
        assert all(got is orig for got, orig in zip(got_list, given))
        for got, want in zip(got_list, want_list):
            np.testing.assert_allclose(cupy.asnumpy(got), cupy.asnumpy(want), **TOLERANCE[dtype])


@requires_gpu
def test_fused_kernels_skip_when_not_finite_and_handle_views():
    cupy, xp = _cupy(), array_api_compat.cupy
    params, grads, m, v, scalars, stats_dtype = _random_state(np.random.default_rng(1), [(64, 32), (10,)], "float32", 3)
    grads[1][4] = cupy.inf
    statistics = cupy_backend.KERNELS.statistics(xp, grads, m, v, scalars, stats_dtype)
    assert not bool(cupy.isfinite(statistics.sums[1, 0]))  # the core's non-finite test reads G
    before = [cupy.asnumpy(a) for a in (*params, *m, *v)]
    cupy_backend.KERNELS.update(xp, params, grads, m, v, statistics, scalars, cupy.asarray(False), True)
    for old, new in zip(before, (*params, *m, *v)):
        np.testing.assert_array_equal(old, cupy.asnumpy(new))

    big = cupy.asarray(np.random.default_rng(2).normal(size=(32, 64)).astype(np.float32))
    view = big.T  # a non-contiguous parameter, updated through the view
    expected_view = view.copy()
    grads = [grads[0], cupy.ones(10, dtype=cupy.float32)]
    moments = [[cupy.zeros_like(expected_view), cupy.zeros(10, cupy.float32)] for _ in range(2)]
    finite = cupy.asarray(True)
    cupy_backend.KERNELS.update(
        xp,
        [view, params[1].copy()],
        grads,
        *[[a.copy() for a in mm] for mm in moments],
        statistics,
        scalars,
        finite,
        True,
    )
    want, _, _ = GENERIC.update(
        xp,
        [expected_view, params[1].copy()],
        grads,
        *moments,
        statistics._replace(direction=None),
        scalars,
        finite,
    )
    np.testing.assert_allclose(cupy.asnumpy(big.T), cupy.asnumpy(want[0]), **TOLERANCE["float32"])


@requires_gpu
@pytest.mark.parametrize("name", sorted(GOLDEN))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cupy_inplace_matches_generic_and_reference(name, dtype):
    cupy = _cupy()
    problem = GOLDEN[name]
    params = [cupy.asarray(np.asarray(p, dtype=dtype)) for p in problem.params]
    opt = NGAdam(params, players=problem.players, graph=problem.weights, **problem.hyperparameters)
    generic_params = [cupy.asarray(np.asarray(p, dtype=dtype)) for p in problem.params]
    generic = NGAdam(
        generic_params, players=problem.players, graph=problem.weights, kernels="generic", **problem.hyperparameters
    )
    for step in range(problem.num_steps):
        grads = [None if g is None else cupy.asarray(np.asarray(g, dtype=dtype)) for g in problem.grads[step]]
        opt.step(grads)
        generic.step(grads)
        for mine, generic, expected in zip(params, generic_params, problem.expected_params[step]):
            np.testing.assert_allclose(cupy.asnumpy(mine), cupy.asnumpy(generic), **TOLERANCE[dtype])
            if dtype == "float64":
                np.testing.assert_allclose(cupy.asnumpy(mine), expected, rtol=1e-9, atol=1e-12)


@requires_gpu
def test_cupy_step_in_place_without_host_sync():
    cupy = _cupy()
    import cupyx

    problem = GOLDEN["skips"]
    params = [cupy.asarray(np.asarray(p, dtype=np.float32)) for p in problem.params]
    opt = NGAdam(params, players=problem.players, graph=problem.weights, **problem.hyperparameters)
    state = opt.state
    tracked = [*params, *state.game, *state.exp_avg, *state.exp_avg_sq]
    before = [(id(a), a.data.ptr) for a in tracked]
    all_grads = [[cupy.asarray(np.asarray(g, dtype=np.float32)) for g in grads] for grads in problem.grads[:10]]
    opt.step(all_grads[0])  # first call compiles the kernels
    cupy.cuda.Device().synchronize()
    with cupyx.allow_synchronize(False):
        for grads in all_grads[1:]:
            opt.step(grads)
    assert [(id(a), a.data.ptr) for a in tracked] == before
    state_dict = opt.state_dict()
    assert state_dict["skipped"] == 3 and state_dict["count"] == 7  # golden "skips": steps 0, 7, 8 non-finite
    reloaded = NGAdam([cupy.asarray(p.get()) for p in params], players=problem.players)
    reloaded.load_state_dict(state_dict)
    np.testing.assert_array_equal(reloaded.state.exp_avg_sq[2].get(), state.exp_avg_sq[2].get())

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
from neat.kernels import GENERIC, BiasCorrection, UpdateScalars
from neat.plugins import plugin_manager

GOLDEN = {problem.name: problem for problem in load_all()}
GPU_SKIP_REASON = cupy_backend.neat_backend_info().skip_reason()
requires_gpu = pytest.mark.skipif(GPU_SKIP_REASON is not None,
                                  reason=f"the CuPy path needs a CUDA GPU: {GPU_SKIP_REASON}")
TOLERANCE = {"float32": dict(rtol=2e-5, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-14)}


# --- plug-in wiring: runs everywhere -------------------------------------------------------------

def test_importing_neat_and_stepping_numpy_never_imports_cupy():
    code = ("import sys, numpy as np, neat\n"
            "from neat.inplace import NGAdam\n"
            "p = [np.zeros(3)]\n"
            "NGAdam(p).step([np.ones(3)])\n"
            "assert 'cupy' not in sys.modules, 'cupy was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_hooks_answer_only_for_cupy():
    hook = plugin_manager().hook
    assert cupy_backend.neat_array_namespace(array=np.zeros(2)) is None
    assert cupy_backend.neat_step_kernels(xp=array_api_compat.numpy) is None
    assert hook.neat_step_kernels(xp=array_api_compat.numpy) is None
    fake_cupy_namespace = types.ModuleType("array_api_compat.cupy")
    assert hook.neat_step_kernels(xp=fake_cupy_namespace) is cupy_backend.KERNELS
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
    cupy = _cupy()
    xp = array_api_compat.cupy
    grads = [cupy.asarray(rng.normal(size=s).astype(dtype)) for s in shapes]
    params = [cupy.asarray(rng.normal(size=s).astype(dtype)) for s in shapes]
    exp_avg = [cupy.asarray((0.1 * rng.normal(size=s)).astype(dtype)) for s in shapes]
    exp_avg_sq = [cupy.asarray((0.01 * rng.random(size=s)).astype(dtype)) for s in shapes]
    stats_dtype = xp.float64 if dtype == "float64" else xp.float32
    previous = BiasCorrection.at(xp, xp.asarray(count, dtype=xp.int32), (0.9, 0.99), 1e-8, stats_dtype)
    current = BiasCorrection.at(xp, xp.asarray(count + 1, dtype=xp.int32), (0.9, 0.99), 1e-8, stats_dtype)
    k = len(shapes)
    scalars = UpdateScalars(nge=xp.asarray(rng.normal(size=k), dtype=stats_dtype),
                            step=xp.asarray(0.01 * rng.random(size=k), dtype=stats_dtype),
                            decay=xp.asarray(1 - 1e-3 * rng.random(size=k), dtype=stats_dtype))
    return params, grads, exp_avg, exp_avg_sq, previous, current, scalars, stats_dtype


@requires_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("count", [0, 5])
def test_fused_kernels_match_generic(dtype, count):
    cupy, xp = _cupy(), array_api_compat.cupy
    shapes = [(300, 70), (7,), (), (129, 3, 5), (70_000,)]
    params, grads, m, v, previous, current, scalars, stats_dtype = _random_state(
        np.random.default_rng(count), shapes, dtype, count)
    fused_stats, fused_finite = cupy_backend.KERNELS.statistics(xp, grads, m, v, previous, stats_dtype)
    generic_stats, generic_finite = GENERIC.statistics(xp, grads, m, v, previous, stats_dtype)
    np.testing.assert_allclose(cupy.asnumpy(fused_stats), cupy.asnumpy(generic_stats), **TOLERANCE[dtype])
    assert bool(fused_finite) and bool(generic_finite)

    args = (scalars, previous, current, (0.9, 0.99), generic_finite)
    expected = GENERIC.update(xp, params, grads, m, v, *args)
    copies = [[a.copy() for a in arrays] for arrays in (params, m, v)]
    fused = cupy_backend.KERNELS.update(xp, copies[0], grads, copies[1], copies[2], *args, inplace=True)
    for got_list, want_list, given in zip(fused, expected, copies):
        assert all(got is orig for got, orig in zip(got_list, given))
        for got, want in zip(got_list, want_list):
            np.testing.assert_allclose(cupy.asnumpy(got), cupy.asnumpy(want), **TOLERANCE[dtype])


@requires_gpu
def test_fused_kernels_skip_non_finite_and_handle_views():
    cupy, xp = _cupy(), array_api_compat.cupy
    params, grads, m, v, previous, current, scalars, stats_dtype = _random_state(
        np.random.default_rng(1), [(64, 32), (10,)], "float32", 3)
    grads[1][4] = cupy.inf
    stats, finite = cupy_backend.KERNELS.statistics(xp, grads, m, v, previous, stats_dtype)
    assert not bool(finite)
    before = [cupy.asnumpy(a) for a in (*params, *m, *v)]
    cupy_backend.KERNELS.update(xp, params, grads, m, v, scalars, previous, current, (0.9, 0.99), finite, True)
    for old, new in zip(before, (*params, *m, *v)):
        np.testing.assert_array_equal(old, cupy.asnumpy(new))

    big = cupy.asarray(np.random.default_rng(2).normal(size=(32, 64)).astype(np.float32))
    view = big.T  # a non-contiguous parameter, updated through the view
    expected_view = view.copy()
    grads = [grads[0], cupy.ones(10, dtype=cupy.float32)]
    moments = [[cupy.zeros_like(expected_view), cupy.zeros(10, cupy.float32)] for _ in range(2)]
    finite = cupy.asarray(True)
    cupy_backend.KERNELS.update(xp, [view, params[1].copy()], grads, *[[a.copy() for a in mm] for mm in moments],
                                scalars, previous, current, (0.9, 0.99), finite, True)
    want, _, _ = GENERIC.update(xp, [expected_view, params[1].copy()], grads, *moments,
                                scalars, previous, current, (0.9, 0.99), finite)
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
    generic = NGAdam(generic_params, players=problem.players, graph=problem.weights, kernels=GENERIC,
                     **problem.hyperparameters)
    for step in range(problem.num_steps):
        grads = [cupy.asarray(np.asarray(g, dtype=dtype)) for g in problem.grads[step]]
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
    tracked = [*params, state.count, state.skipped, state.log_step, state.alignment, state.conflict,
               *state.exp_avg, *state.exp_avg_sq, state.membership, state.smoothing]
    before = [(id(a), a.data.ptr) for a in tracked]
    all_grads = [[cupy.asarray(np.asarray(g, dtype=np.float32)) for g in grads] for grads in problem.grads[:10]]
    opt.step(all_grads[0])  # first call compiles the kernels
    cupy.cuda.Device().synchronize()
    with cupyx.allow_synchronize(False):
        for grads in all_grads[1:]:
            opt.step(grads)
    assert [(id(a), a.data.ptr) for a in tracked] == before
    state_dict = opt.state_dict()
    assert state_dict["skipped"] == 3 and state_dict["step"] == 7  # golden "skips": steps 0, 7, 8 non-finite
    reloaded = NGAdam([cupy.asarray(p.get()) for p in params], players=problem.players)
    reloaded.load_state_dict(state_dict)
    np.testing.assert_array_equal(reloaded.state.exp_avg_sq[2].get(), state.exp_avg_sq[2].get())

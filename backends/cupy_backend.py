"""CuPy backend: ``cupy.ndarray`` uses ``array_api_compat.cupy``, with fused kernels for both passes.

* statistics pass (SPEC steps 0, 2, 3): one raw kernel per tensor reads ``g, m, v``
  once and writes per-block partial sums of ``⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩`` and the count
  of non-finite ``g`` (accumulated in float64); one ``sum`` over the blocks of all
  tensors finishes them in a fixed order, so the result is deterministic;
* update pass (SPEC steps 2, 6, 8, 9): one ``ElementwiseKernel`` per tensor reads
  ``θ, g, m, v`` once and writes ``θ, m, v`` (in place, or into copies).

Both take every per-step scalar (bias corrections, ``γκC/U``, ``ηλ``, ``1 − ηω``,
the finite flag) as 0-d device arrays, so a step never waits for the device.
The per-element math lives in ``__host__ __device__`` functions (:data:`ELEMENT_SOURCE`)
that tests also compile for the CPU and compare with :data:`neat.kernels.GENERIC`.
``cupy`` is imported only when a CuPy array or namespace is seen.
"""

from __future__ import annotations

import functools
import sys

import array_api_compat
import numpy as np

from neat.hookspecs import hookimpl
from neat.kernels import GENERIC
from neat.plugins import BackendInfo

#: Per-element formulas, shared by the GPU kernels and the CPU formula test.
ELEMENT_SOURCE = r"""
template <typename State>
__host__ __device__ State neat_direction(State m, State v, State c1, State c2, State eps) {
    // (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps), SPEC steps 2 and 9
    return (m / c1) / (sqrt(v / c2) + eps);
}

template <typename State>
__host__ __device__ void neat_statistics_element(State g, State m, State v, State c1, State c2, State eps,
                                                 double acc[4]) {
    // <g,g>, <g,u>, <u,u> terms and the non-finite count, SPEC steps 0, 2, 3
    const State u = neat_direction(m, v, c1, c2, eps);
    acc[0] += (double)(g * g);
    acc[1] += (double)(g * u);
    acc[2] += (double)(u * u);
    acc[3] += isfinite(g) ? 0.0 : 1.0;
}

template <typename Param, typename State>
__host__ __device__ void neat_update_element(Param& p, State g, State& m, State& v,
                                             State c1_prev, State c2_prev, State eps_prev,
                                             State c1, State c2, State eps, State nge, State step, State decay,
                                             State b1, State one_minus_b1, State b2, State one_minus_b2,
                                             bool take_step) {
    // NGE (step 6), moments (step 8), decoupled decay and Adam step (step 9); unchanged when skipped (step 0)
    const State u = neat_direction(m, v, c1_prev, c2_prev, eps_prev);
    const State g_hat = g - nge * u;
    const State m_next = b1 * m + one_minus_b1 * g_hat;
    const State v_next = b2 * v + one_minus_b2 * (g * g);
    const State p_next = (State)p * decay - step * neat_direction(m_next, v_next, c1, c2, eps);
    if (take_step) {
        p = (Param)p_next;
        m = m_next;
        v = v_next;
    }
}
"""

#: Threads per block of the statistics kernel, and the most blocks one tensor gets.
BLOCK = 256
MAX_BLOCKS = 512

_STATISTICS_SOURCE = ELEMENT_SOURCE + r"""
template <typename Grad, typename State, typename Stat>
__global__ void neat_statistics(const Grad* g, const State* m, const State* v, long long n,
                                const Stat* c1, const Stat* c2, const Stat* eps, double* partial) {
    // one block's partial sums of the four statistics, reduced in a fixed order
    __shared__ double cache[4][%(block)d];
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    const State c1_s = (State)*c1, c2_s = (State)*c2, eps_s = (State)*eps;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        neat_statistics_element<State>((State)g[i], m[i], v[i], c1_s, c2_s, eps_s, acc);
    }
    for (int c = 0; c < 4; ++c) cache[c][threadIdx.x] = acc[c];
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half >>= 1) {
        if (threadIdx.x < half) {
            for (int c = 0; c < 4; ++c) cache[c][threadIdx.x] += cache[c][threadIdx.x + half];
        }
        __syncthreads();
    }
    if (threadIdx.x < 4) partial[4 * blockIdx.x + threadIdx.x] = cache[threadIdx.x][0];
}
""" % {"block": BLOCK}

#: C types of the dtypes the statistics kernel is built for (grads and moments alike; statistics).
_C_TYPES = {"float32": "float", "float64": "double"}
#: Compile options: IEEE division and square root (NVRTC's default) and no FMA contraction,
#: so each element is computed exactly as NumPy computes GENERIC's formulas.
_OPTIONS = ("--fmad=false",)


def _cupy():
    import cupy

    return cupy


@functools.lru_cache(maxsize=None)
def _statistics_module():
    names = [f"neat_statistics<{t}, {t}, {s}>" for t in _C_TYPES.values() for s in _C_TYPES.values()]
    return _cupy().RawModule(code=_STATISTICS_SOURCE, options=_OPTIONS, name_expressions=names)


@functools.lru_cache(maxsize=None)
def _update_kernel():
    return _cupy().ElementwiseKernel(
        "P g, F c1_prev, F c2_prev, F eps_prev, F c1, F c2, F eps, F nge, F step, F decay, "
        "float64 b1, float64 b2, bool take_step",
        "P p, S m, S v",
        "neat_update_element<P, S>(p, (S)g, m, v, (S)c1_prev, (S)c2_prev, (S)eps_prev, (S)c1, (S)c2, (S)eps, "
        "(S)nge, (S)step, (S)decay, (S)b1, (S)(1.0 - b1), (S)b2, (S)(1.0 - b2), take_step)",
        "neat_update",
        preamble=ELEMENT_SOURCE,
        options=_OPTIONS,
    )


def _c_type(dtype) -> "str | None":
    return _C_TYPES.get(np.dtype(dtype).name)


def _fusable(grads, exp_avg, exp_avg_sq) -> bool:
    """The raw statistics kernel reads flat float32/float64 memory with ``g`` typed like ``m``."""
    return all(g.dtype == m.dtype and _c_type(m.dtype) is not None and
               g.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous
               for g, m, v in zip(grads, exp_avg, exp_avg_sq))


class CupyKernels:
    """The two passes of a step as fused CuPy kernels (the :class:`neat.kernels.StepKernels` protocol)."""

    def statistics(self, xp, grads, exp_avg, exp_avg_sq, previous, stats_dtype):
        if not _fusable(grads, exp_avg, exp_avg_sq):
            return GENERIC.statistics(xp, grads, exp_avg, exp_avg_sq, previous, stats_dtype)
        cupy = _cupy()
        previous = previous.astype(xp, stats_dtype)  # the kernel reads them as `Stat`
        blocks = max(1, min(MAX_BLOCKS, -(-max(g.size for g in grads) // BLOCK)))
        partial = cupy.empty((len(grads), blocks, 4), dtype=cupy.float64)
        module, stat_type = _statistics_module(), _c_type(stats_dtype)
        for k, (g, m, v) in enumerate(zip(grads, exp_avg, exp_avg_sq)):
            state_type = _c_type(m.dtype)
            kernel = module.get_function(f"neat_statistics<{state_type}, {state_type}, {stat_type}>")
            kernel((blocks,), (BLOCK,), (g, m, v, cupy.int64(g.size),
                                         previous.first, previous.second, previous.eps, partial[k]))
        totals = cupy.sum(partial, axis=1)
        return totals[:, :3].astype(stats_dtype), cupy.all(totals[:, 3] == 0)

    def update(self, xp, params, grads, exp_avg, exp_avg_sq, scalars, previous, current, betas, finite,
               inplace=False):
        kernel = _update_kernel()
        previous, current = (c.astype(xp, scalars.step.dtype) for c in (previous, current))  # one type `F`
        if not inplace:
            params, exp_avg, exp_avg_sq = ([a.copy() for a in arrays] for arrays in (params, exp_avg, exp_avg_sq))
        for k, (p, g, m, v) in enumerate(zip(params, grads, exp_avg, exp_avg_sq)):
            kernel(g, previous.first, previous.second, previous.eps, current.first, current.second, current.eps,
                   scalars.nge[k], scalars.step[k], scalars.decay[k], betas[0], betas[1], finite, p, m, v)
        return list(params), list(exp_avg), list(exp_avg_sq)


KERNELS = CupyKernels()


@hookimpl
def neat_array_namespace(array):
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(array, cupy.ndarray):
        import array_api_compat.cupy

        return array_api_compat.cupy
    return None


@hookimpl
def neat_step_kernels():
    from neat.kernel_selection import KernelSet

    return KernelSet("cupy", KERNELS, _cupy_unsupported, priority=10)


def _cupy_unsupported(xp, params):
    if not array_api_compat.is_cupy_namespace(xp):
        return "the cupy kernels run CuPy arrays only"
    return None


def _skip_reason():
    try:
        cupy = _cupy()
    except ImportError:
        return "cupy is not installed"
    try:
        if cupy.cuda.runtime.getDeviceCount() > 0:
            return None
    except Exception:  # noqa: BLE001 - no driver, no runtime library, no device: all mean "cannot run here"
        pass
    return "no CUDA device (cupy is installed but has no usable GPU)"


def _from_numpy(array, dtype):
    return _cupy().asarray(np.asarray(array, dtype=dtype))


def _to_numpy(array):
    return _cupy().asnumpy(array).astype(np.float64)


@hookimpl
def neat_backend_info():
    return BackendInfo(name="cupy", requires=("cupy",), dtypes=("float64", "float32"),
                       from_numpy=_from_numpy, to_numpy=_to_numpy, skip_reason=_skip_reason)

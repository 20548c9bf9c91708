"""CuPy backend: ``cupy.ndarray`` uses ``array_api_compat.cupy``, with fused kernels for both passes.

* statistics pass (SPEC steps 2, 3): one raw kernel per tensor reads ``g, m, v``
  once and writes per-block partial sums of ``⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩`` (accumulated in
  float64); one ``sum`` over the blocks of all tensors finishes them in a fixed order,
  so the result is deterministic (a NaN or inf ``g`` makes its ``⟨g,g⟩`` non-finite,
  which is how the core's one non-finite test sees it, SPEC step 0);
* update pass (SPEC steps 2, 6, 8, 9): one ``ElementwiseKernel`` per tensor reads
  ``θ, g, m, v`` once and writes ``θ, m, v`` (in place, or into copies).

Both take every per-tensor scalar (:class:`neat.kernels.TensorScalars`) and the finite
flag as device arrays, so a step never waits for the device.
The per-element math lives in ``__host__ __device__`` functions (:data:`ELEMENT_SOURCE`)
that tests also compile for the CPU and compare with :data:`neat.kernels.GENERIC`.
``cupy`` is imported only when a CuPy array or namespace is seen.
"""

from __future__ import annotations

import functools

import array_api_compat
import numpy as np

from neat.hookspecs import hookimpl
from neat.kernels import GENERIC, Statistics
from neat.plugins import BackendInfo, namespace_if_instance

#: Per-element formulas, shared by the GPU kernels and the CPU formula test. They are
#: :mod:`neat.kernels`' arithmetic, operation for operation: ``m · scale / (√v + shift)``,
#: 0 where the denominator is 0.
ELEMENT_SOURCE = r"""
template <typename State>
__host__ __device__ State neat_direction(State m, State v, State scale, State shift) {
    // m * scale / (sqrt(v) + shift), 0 where the denominator is 0: SPEC steps 2 and 9
    const State denominator = sqrt(v) + shift;
    return denominator > (State)0 ? m * scale / denominator : (State)0;
}

template <typename State>
__host__ __device__ void neat_statistics_element(State g, State m, State v, State prev_scale, State prev_shift,
                                                 double acc[3]) {
    // <g,g>, <g,u>, <u,u> terms of SPEC step 3, with u the previous step's direction (step 2)
    const State u = neat_direction(m, v, prev_scale, prev_shift);
    acc[0] += (double)(g * g);
    acc[1] += (double)(g * u);
    acc[2] += (double)(u * u);
}

template <typename Param, typename State>
__host__ __device__ void neat_update_element(Param& p, State g, State& m, State& v,
                                             State prev_scale, State prev_shift, State nge, State decay,
                                             State step, State shift,
                                             State b1, State one_minus_b1, State b2, State one_minus_b2,
                                             bool take_step) {
    // NGE (step 6), moments (step 8), decoupled decay and Adam step (step 9); unchanged when skipped (step 0)
    const State u = neat_direction(m, v, prev_scale, prev_shift);
    const State g_hat = g - nge * u;
    const State m_next = b1 * m + one_minus_b1 * g_hat;
    const State v_next = b2 * v + one_minus_b2 * (g * g);
    const State p_next = (State)p * decay - neat_direction(m_next, v_next, step, shift);
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

_STATISTICS_SOURCE = (
    ELEMENT_SOURCE
    + r"""
template <typename Grad, typename State, typename Stat>
__global__ void neat_statistics(const Grad* g, const State* m, const State* v, long long n,
                                const Stat* prev_scale, const Stat* prev_shift, double* partial) {
    // one block's partial sums of the three statistics, reduced in a fixed order
    __shared__ double cache[3][NEAT_BLOCK];
    double acc[3] = {0.0, 0.0, 0.0};
    const State scale = (State)*prev_scale, shift = (State)*prev_shift;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        neat_statistics_element<State>((State)g[i], m[i], v[i], scale, shift, acc);
    }
    for (int c = 0; c < 3; ++c) cache[c][threadIdx.x] = acc[c];
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half >>= 1) {
        if (threadIdx.x < half) {
            for (int c = 0; c < 3; ++c) cache[c][threadIdx.x] += cache[c][threadIdx.x + half];
        }
        __syncthreads();
    }
    if (threadIdx.x < 3) partial[3 * blockIdx.x + threadIdx.x] = cache[threadIdx.x][0];
}
""".replace("NEAT_BLOCK", str(BLOCK))
)

#: C types of the dtypes the statistics kernel is built for (grads and moments alike; statistics).
_C_TYPES = {"float32": "float", "float64": "double"}
#: Compile options: IEEE division and square root (NVRTC's default) and no FMA contraction,
#: so each element is computed exactly as NumPy computes GENERIC's formulas.
_OPTIONS = ("--fmad=false",)


def _cupy():
    import cupy

    return cupy


@functools.cache
def _statistics_module():
    names = [f"neat_statistics<{t}, {t}, {s}>" for t in _C_TYPES.values() for s in _C_TYPES.values()]
    return _cupy().RawModule(code=_STATISTICS_SOURCE, options=_OPTIONS, name_expressions=names)


@functools.cache
def _update_kernel():
    return _cupy().ElementwiseKernel(
        "P g, F prev_scale, F prev_shift, F nge, F decay, F step, F shift, F b1, F w1, F b2, F w2, bool take_step",
        "P p, S m, S v",
        "neat_update_element<P, S>(p, (S)g, m, v, (S)prev_scale, (S)prev_shift, (S)nge, (S)decay, (S)step, "
        "(S)shift, (S)b1, (S)w1, (S)b2, (S)w2, take_step)",
        "neat_update",
        preamble=ELEMENT_SOURCE,
        options=_OPTIONS,
    )


def _c_type(dtype) -> str | None:
    return _C_TYPES.get(np.dtype(dtype).name)


def _fusable(grads, exp_avg, exp_avg_sq) -> bool:
    """The raw statistics kernel reads flat float32/float64 memory with ``g`` typed like ``m``."""
    return all(
        g.dtype == m.dtype
        and _c_type(m.dtype) is not None
        and g.flags.c_contiguous
        and m.flags.c_contiguous
        and v.flags.c_contiguous
        for g, m, v in zip(grads, exp_avg, exp_avg_sq)
    )


class CupyKernels:
    """The two passes of a step as fused CuPy kernels (the :class:`neat.kernels.StepKernels` protocol).

    The statistics pass hands no direction to the update pass (``Statistics.direction`` is
    ``None``): the update kernel reads ``m, v`` anyway and forms ``u`` again from them."""

    name = "cupy"

    def statistics(self, xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype):
        """SPEC steps 2, 3: per-tensor ``⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩`` accumulated in float64, then cast."""
        if not _fusable(grads, exp_avg, exp_avg_sq):
            return GENERIC.statistics(xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype)
        cupy = _cupy()
        blocks = max(1, min(MAX_BLOCKS, -(-max(g.size for g in grads) // BLOCK)))
        partial = cupy.zeros((len(grads), blocks, 3), dtype=cupy.float64)
        module, stat_type = _statistics_module(), _c_type(stats_dtype)
        for k, (g, m, v) in enumerate(zip(grads, exp_avg, exp_avg_sq)):
            state_type = _c_type(m.dtype)
            kernel = module.get_function(f"neat_statistics<{state_type}, {state_type}, {stat_type}>")
            kernel(
                (blocks,),
                (BLOCK,),
                (g, m, v, cupy.int64(g.size), scalars.prev_scale[k : k + 1], scalars.prev_shift[k : k + 1], partial[k]),
            )
        return Statistics(cupy.sum(partial, axis=1).astype(stats_dtype), None)

    def update(self, xp, params, grads, exp_avg, exp_avg_sq, statistics, scalars, finite, inplace=False):
        """SPEC steps 2, 6, 8, 9 in one elementwise kernel per tensor; nothing changes where ``finite``
        is false (SPEC step 0). The moments' coefficients ``β1, 1 − β1, β2, 1 − β2`` are each one
        value for all tensors (a scalar argument, cast to the kernel's ``F``) or one per tensor
        (:class:`~neat.kernels.TensorScalars`)."""
        kernel = _update_kernel()
        if not inplace:
            params, exp_avg, exp_avg_sq = ([a.copy() for a in arrays] for arrays in (params, exp_avg, exp_avg_sq))
        for k, (p, g, m, v) in enumerate(zip(params, grads, exp_avg, exp_avg_sq)):
            kernel(
                g,
                scalars.prev_scale[k],
                scalars.prev_shift[k],
                scalars.nge[k],
                scalars.decay[k],
                scalars.step[k],
                scalars.shift[k],
                *(value[k] if getattr(value, "ndim", 0) == 1 else value for value in scalars[6:]),
                finite,
                p,
                m,
                v,
            )
        return list(params), list(exp_avg), list(exp_avg_sq)


KERNELS = CupyKernels()


@hookimpl
def neat_array_namespace(array):
    return namespace_if_instance(array, "cupy", "ndarray", "array_api_compat.cupy")


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
    return BackendInfo(
        name="cupy",
        requires=("cupy",),
        dtypes=("float64", "float32"),
        from_numpy=_from_numpy,
        to_numpy=_to_numpy,
        skip_reason=_skip_reason,
    )

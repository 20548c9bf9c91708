"""JAX backend: ``jax.Array`` (tracers included) uses ``jax.numpy``, which implements the array API.

It also provides :class:`JaxKernels`, the two array passes of a step written so that
XLA:CPU fuses them without full-size temporaries or copies of the donated state.
"""

from __future__ import annotations

import sys

import numpy as np

from neat.hookspecs import hookimpl
from neat.kernels import adam_direction
from neat.plugins import BackendInfo


@hookimpl
def neat_array_namespace(array):
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(array, jax.Array):
        return jax.numpy
    return None


def x64_enabled() -> bool:
    """Whether JAX's x64 mode is on (``JAX_ENABLE_X64=1``); without it JAX has no float64 arrays."""
    import jax

    return bool(jax.config.jax_enable_x64)


def from_numpy(array, dtype_name: str):
    """A JAX array of ``dtype_name`` from a NumPy array; float64 needs x64 mode."""
    import jax.numpy as jnp

    if dtype_name == "float64" and not x64_enabled():
        raise RuntimeError("float64 JAX arrays need x64 mode (JAX_ENABLE_X64=1)")
    return jnp.asarray(np.asarray(array, dtype=np.float64), dtype=dtype_name)


def _to_numpy(array):
    return np.asarray(array, dtype=np.float64)


@hookimpl
def neat_backend_info():
    """float64 is listed only in x64 mode (``JAX_ENABLE_X64=1``): without it JAX has no float64 arrays."""
    try:
        dtypes = ("float64", "float32", "bfloat16") if x64_enabled() else ("float32", "bfloat16")
    except ImportError:  # jax missing: ``requires`` makes the suite skip this backend
        dtypes = ("float32", "bfloat16")
    return BackendInfo(name="jax", requires=("jax",), dtypes=dtypes, from_numpy=from_numpy, to_numpy=_to_numpy)


def _add_pairwise(left, right):
    return tuple(a + b for a, b in zip(left, right))


def _apart(m, v, slot: int):
    """``(m, v)`` behind an optimization barrier that XLA keeps apart from every other ``slot``.

    XLA stores (rather than recomputes) a divide that several loops read, and merges equal
    expressions; a barrier of a different arity per slot stops the merge, so each loop
    recomputes the Adam direction from ``m, v`` and no full-size temporary is written."""
    from jax import lax

    return lax.optimization_barrier((m, v) + (m,) * slot)[:2]


class JaxKernels:
    """The passes of :data:`neat.kernels.GENERIC`, arranged for XLA:CPU (same numbers, tested).

    Each pass becomes one loop per tensor that reads the donated buffers and writes its
    result in place: no temporary the size of a tensor and no copy of the old moments.
    """

    def statistics(self, xp, grads, exp_avg, exp_avg_sq, previous, stats_dtype):
        """SPEC steps 0, 2, 3: ``⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩`` per tensor in one reduction, and whether
        every ``g`` is finite, as ``Σ g·0`` being finite (0 for finite ``g``, NaN for NaN or ±inf)."""
        from jax import lax

        rows, zero_sums = [], []
        for g, m, v in zip(grads, exp_avg, exp_avg_sq):
            g = xp.astype(g, m.dtype)
            correction = previous.astype(xp, m.dtype)
            u, u_left, u_right = (adam_direction(xp, *_apart(m, v, slot), correction) for slot in (1, 2, 3))
            zero = xp.zeros((), dtype=m.dtype)
            *sums, zero_sum = lax.reduce((g * g, g * u, u_left * u_right, g * zero), (zero,) * 4, _add_pairwise,
                                         tuple(range(g.ndim)))
            rows.append(xp.astype(xp.stack(sums), stats_dtype))
            zero_sums.append(zero_sum)
        return xp.stack(rows), xp.isfinite(xp.sum(xp.stack(zero_sums)))

    def update(self, xp, params, grads, exp_avg, exp_avg_sq, scalars, previous, current, betas, finite,
               inplace=False):
        """SPEC steps 2, 6, 8, 9, as three in-place loops per tensor: ``m``, then ``v``, then ``θ``
        from the new moments; the old ``θ, m, v`` where ``finite`` is false (step 0)."""
        from jax import lax

        if inplace:
            raise TypeError("JAX arrays are immutable: inplace=True is not supported, use the returned arrays")
        beta1, beta2 = betas
        new_params, new_avg, new_avg_sq = [], [], []
        for k, (p, g, m, v) in enumerate(zip(params, grads, exp_avg, exp_avg_sq)):
            dtype = m.dtype
            g = xp.astype(g, dtype)
            m, v = _apart(m, v, 0)
            u = adam_direction(xp, m, v, previous.astype(xp, dtype))
            m_next = xp.where(finite, beta1 * m + (1.0 - beta1) * (g - xp.astype(scalars.nge[k], dtype) * u), m)
            # Equal to v; reading m_next makes the v loop run after the m loop has read the old v,
            # so v is overwritten in place instead of being copied first.
            v_old = xp.where(finite, v, m_next)
            v_next = xp.where(finite, beta2 * v_old + (1.0 - beta2) * (g * g), v)
            # θ reads the stored new moments instead of recomputing them from the old ones.
            m_next, v_next = lax.optimization_barrier((m_next, v_next))
            direction = adam_direction(xp, m_next, v_next, current.astype(xp, dtype))
            p_next = xp.astype(p, dtype) * xp.astype(scalars.decay[k], dtype) \
                - xp.astype(scalars.step[k], dtype) * direction
            new_params.append(xp.where(finite, xp.astype(p_next, p.dtype), p))
            new_avg.append(m_next)
            new_avg_sq.append(v_next)
        return new_params, new_avg, new_avg_sq


@hookimpl
def neat_step_kernels():
    from neat.kernel_selection import KernelSet

    return KernelSet("jax", JaxKernels(), _jax_unsupported, priority=10)


def _jax_unsupported(xp, params):
    jax = sys.modules.get("jax")
    if jax is None or xp is not jax.numpy:
        return "the jax kernels run JAX arrays only"
    return None

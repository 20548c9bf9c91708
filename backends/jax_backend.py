"""JAX backend: ``jax.Array`` (tracers included) uses ``jax.numpy``, which implements the array API.

It also provides :class:`JaxKernels` (kernel set ``"jax"``), the two array passes of a step
written so that XLA:CPU vectorises them and fuses them without full-size temporaries or
copies of the donated state.
"""

from __future__ import annotations

import sys

import numpy as np

from neat.hookspecs import hookimpl
from neat.kernels import Statistics, adam_direction, entry
from neat.plugins import BackendInfo, namespace_if_instance


@hookimpl
def neat_array_namespace(array):
    return namespace_if_instance(array, "jax", "Array", "jax.numpy")


def x64_enabled() -> bool:
    """Whether JAX's x64 mode is on (``JAX_ENABLE_X64=1``); without it JAX has no float64 arrays."""
    import jax

    return bool(jax.config.read("jax_enable_x64"))


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


def _column(xp, values, k: int, dtype):
    """Entry ``k`` of a per-tensor ``(K,)`` column of :class:`~neat.kernels.TensorScalars`, as ``dtype``."""
    return xp.astype(values[k], dtype)


def _previous_direction(xp, m, v, scalars, k: int, slot: int):
    """``u = m · prev_scale / (√v + prev_shift)``, 0 where the denominator is 0 (SPEC step 2),
    recomputed from ``m, v`` behind barrier ``slot`` (see :func:`_apart`)."""
    m, v = _apart(m, v, slot)
    return adam_direction(
        xp, m, v, _column(xp, scalars.prev_scale, k, m.dtype), _column(xp, scalars.prev_shift, k, m.dtype)
    )


#: Lanes of the first level of :func:`_blocked_sums`: XLA:CPU unrolls a reduction over this many
#: rows and vectorises it across the columns (32 rows are no longer unrolled: scalar code).
LANES = 16


def _three_sums(xp, arrays, scalars, k: int, axis):
    """``Σ g·g, Σ g·u, Σ u·u`` over ``axis`` in one multi-output reduction (one read of ``g, m, v``)."""
    from jax import lax

    g, m, v = arrays
    u = _previous_direction(xp, m, v, scalars, k, 1)
    zero = xp.zeros((), dtype=m.dtype)
    return lax.reduce((g * g, g * u, u * u), (zero,) * 3, _add_pairwise, axis)


def _blocked_sums(xp, g, m, v, scalars, k: int):
    """The three sums of tensor ``k`` (SPEC step 3) as a ``(3,)`` array, accurate and vectorised.

    XLA:CPU reduces a whole tensor with one scalar accumulator: a chain of dependent adds
    (latency-bound, ~4 cycles an element) whose float32 rounding error grows with the size
    (10 % on a 38.6M-element embedding). Here the first ``LANES × (n // LANES)`` entries are
    viewed as ``LANES`` rows: one reduction over the rows gives ``n / LANES`` partial sums of
    ``LANES`` terms each, vectorised across the columns; the partials are then summed by
    ``jnp.sum`` (a library reduction, blocked and vectorised), and the last ``n % LANES``
    entries by a small reduction of their own. A tensor whose type names mesh axes (Explicit
    sharding) cannot be flattened: it is reduced whole, each shard locally, then across shards."""
    if _explicitly_sharded(g):
        return xp.stack(_three_sums(xp, (g, m, v), scalars, k, tuple(range(g.ndim))))
    flat = [xp.reshape(x, (-1,)) for x in (g, m, v)]
    head = flat[0].shape[0] // LANES * LANES
    pieces = []
    if head:
        rows = [xp.reshape(x[:head], (LANES, -1)) for x in flat]
        pieces.append(xp.stack([xp.sum(part) for part in _three_sums(xp, rows, scalars, k, (0,))]))
    if head < flat[0].shape[0]:
        pieces.append(xp.stack(_three_sums(xp, [x[head:] for x in flat], scalars, k, (0,))))
    return sum(pieces[1:], pieces[0])


def _explicitly_sharded(x) -> bool:
    """Whether ``x``'s type shards an axis over a mesh (``AxisType.Explicit``)."""
    import jax

    return any(axis is not None for axis in jax.typeof(x).sharding.spec)


class JaxKernels:
    """The passes of :data:`neat.kernels.GENERIC`, arranged for XLA:CPU (same numbers, tested).

    The statistics pass reads ``g, m, v`` once per tensor (a vectorised blocked reduction); the
    update pass is three loops per tensor that read the donated buffers and write their results
    in place: no temporary the size of a tensor and no copy of the old moments. The direction
    ``u`` is recomputed wherever it is read (``Statistics.direction`` is ``None``): a stored
    ``u`` would be a parameter-sized temporary.
    """

    name = "jax"

    def statistics(self, xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype):
        """SPEC steps 2, 3: ``⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩`` of every tensor, ``u = m · prev_scale /
        (√v + prev_shift)`` (0 where the denominator is 0), from one read of ``g, m, v``
        (:func:`_blocked_sums`)."""
        rows = []
        for k, (g, m, v) in enumerate(zip(grads, exp_avg, exp_avg_sq)):
            g = xp.astype(g, m.dtype)
            rows.append(xp.astype(_blocked_sums(xp, g, m, v, scalars, k), stats_dtype))
        return Statistics(xp.stack(rows), None)

    def update(self, xp, params, grads, exp_avg, exp_avg_sq, statistics, scalars, finite, inplace=False):
        """SPEC steps 2, 6, 8, 9: ``ĝ = g − nge · u``, ``m ← β1 m + (1 − β1) ĝ``,
        ``v ← β2 v + (1 − β2) g²``, ``θ ← θ · decay − m · step / (√v + shift)`` (0 where the
        denominator is 0), as three in-place loops per tensor (``m``, then ``v``, then ``θ`` from
        the new moments); the old ``θ, m, v`` where ``finite`` is false (step 0)."""
        from jax import lax

        if inplace:
            raise TypeError("JAX arrays are immutable: inplace=True is not supported, use the returned arrays")
        new_params, new_avg, new_avg_sq = [], [], []
        for k, (p, g, m, v) in enumerate(zip(params, grads, exp_avg, exp_avg_sq)):
            dtype = m.dtype
            g = xp.astype(g, dtype)
            u = _previous_direction(xp, m, v, scalars, k, 0)
            g_hat = g - _column(xp, scalars.nge, k, dtype) * u
            beta1, weight1, beta2, weight2 = (entry(xp, value, k, m) for value in scalars[6:])
            m_next = xp.where(finite, beta1 * m + weight1 * g_hat, m)
            # Equal to v; reading m_next makes the v loop run after the m loop has read the old v,
            # so v is overwritten in place instead of being copied first.
            v_old = xp.where(finite, v, m_next)
            v_next = xp.where(finite, beta2 * v_old + weight2 * (g * g), v)
            # θ reads the stored new moments instead of recomputing them from the old ones.
            m_next, v_next = lax.optimization_barrier((m_next, v_next))
            direction = adam_direction(
                xp, m_next, v_next, _column(xp, scalars.step, k, dtype), _column(xp, scalars.shift, k, dtype)
            )
            p_next = xp.astype(p, dtype) * _column(xp, scalars.decay, k, dtype) - direction
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

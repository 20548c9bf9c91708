"""The compiled passes of the numba kernels (:mod:`neat.backends.numba.kernels`).

Every tensor travels as its address (an ``int64``); a loop rebuilds each block of it from
the address (:func:`neat.backends.numba.unsafe.view`), so one call covers any number of
tensors without unboxing a Python object per tensor. The work is cut into fixed-size blocks
of elements (``BLOCK``, never straddling two tensors) listed in a block table ``(tensor,
start, stop)``; blocks run in parallel (``prange``), and the statistics' per-block partial
sums are added per tensor in block order afterwards, so the sums do not depend on the
number of threads.

Storage formats: ``float64`` and ``float32`` are read as they are; 16-bit floats
travel as their bits, ``float16`` as ``int16`` and ``bfloat16`` as ``uint16``, and are
widened to the compute dtype (that of ``m``) on load and rounded to nearest even on store.

Loaded at the first use of the compiled kernels (:mod:`neat.backends.numba.first_use`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from neat.backends.numba.unsafe import view

#: Elements per block of the parallel decomposition.
BLOCK = 1 << 14

#: Elements per chunk of a block whose statistics are summed in the statistics dtype before
#: they are added in float64 (float32 lanes vectorise twice as wide as float64 ones).
CHUNK = 1 << 10

#: Passes over fewer elements run on one thread: waking numba's pool costs about as much as
#: a thread streams through this many (32 blocks; measured: 100–300 µs per launch on 2 cores).
#: Counted in elements, not blocks: a hundred one-element tensors are a hundred blocks.
PARALLEL_ELEMENTS = 32 * BLOCK

#: An empty array of each storage format: the argument that tells a compiled loop how to read a tensor.
LIKES = {fmt: np.empty(0, fmt) for fmt in (np.float64, np.float32, np.int16, np.uint16)}


@njit(cache=True)
def block_table(sizes):
    """``(tensor, start, stop)`` of every block of :data:`BLOCK` elements of tensors of ``sizes``,
    in tensor order, never straddling two tensors: the one parallel decomposition of a pass."""
    total = 0
    for size in sizes:
        total += (size + BLOCK - 1) // BLOCK
    table, b = np.empty((total, 3), np.int64), 0
    for k in range(sizes.size):
        for start in range(0, sizes[k], BLOCK):
            table[b, 0], table[b, 1], table[b, 2] = k, start, min(start + BLOCK, sizes[k])
            b += 1
    return table


def _scalar_intrinsic(result_type, argument_type, emit):
    """An intrinsic ``result_type(argument_type)`` whose LLVM IR is ``emit(builder, value)``."""

    @intrinsic
    def convert(typingctx, value):
        return result_type(argument_type), lambda context, builder, sig, args: emit(builder, args[0])

    return convert


_half_to_float32 = _scalar_intrinsic(
    types.float32, types.int16, lambda builder, x: builder.fpext(builder.bitcast(x, ir.HalfType()), ir.FloatType())
)
_float32_to_half = _scalar_intrinsic(
    types.int16, types.float32, lambda builder, x: builder.bitcast(builder.fptrunc(x, ir.HalfType()), ir.IntType(16))
)
_bits_to_float32 = _scalar_intrinsic(types.float32, types.uint32, lambda builder, x: builder.bitcast(x, ir.FloatType()))
_float32_to_bits = _scalar_intrinsic(types.uint32, types.float32, lambda builder, x: builder.bitcast(x, ir.IntType(32)))


@njit(inline="always")
def _bfloat16_to_float32(bits):
    return _bits_to_float32(np.uint32(bits) << np.uint32(16))


@njit  # (not inlined in numba IR, where its branches trip a numba 0.68 SSA check; LLVM inlines it)
def _float32_to_bfloat16(value):
    """Round to nearest even, as ``torch`` converts; NaN becomes the quiet NaN ``0x7FC0``."""
    if value != value:
        return np.uint16(0x7FC0)
    bits = _float32_to_bits(value)
    return np.uint16((bits + ((bits >> np.uint32(16)) & np.uint32(1)) + np.uint32(0x7FFF)) >> np.uint32(16))


def _widen(value, like):
    """``value`` (a stored element) in the dtype of the array ``like``."""


@overload(_widen, inline="always")
def _widen_overload(value, like):
    compute = like.dtype
    if value == types.uint16:
        return lambda value, like: compute(_bfloat16_to_float32(value))
    if value == types.int16:
        return lambda value, like: compute(_half_to_float32(value))
    return lambda value, like: compute(value)


def _narrow(value, like):
    """``value`` (a computed element) stored in the format of the array ``like``."""


@overload(_narrow, inline="always")
def _narrow_overload(value, like):
    storage = like.dtype
    if storage == types.uint16:
        return lambda value, like: _float32_to_bfloat16(np.float32(value))
    if storage == types.int16:
        return lambda value, like: _float32_to_half(np.float32(value))
    return lambda value, like: storage(value)


@njit(inline="always")
def _direction(m, v, scale, shift, like):
    """``m · scale / (√v + shift)`` in the dtype of ``like``, 0 where the denominator is 0 (SPEC steps 2, 9)."""
    denominator = np.sqrt(v) + shift
    return m * scale / denominator if denominator > 0 else _widen(0, like)


@njit(inline="always")
def _chunk_sums(g, m, v, scale, shift, g_like, m_like, v_like):
    """``⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩`` of one chunk, accumulated in the dtype of ``m`` (the statistics dtype)."""
    zero = _widen(0, m_like)
    grad_sq = cross = dir_sq = zero
    for i in range(g.size):
        g_i = _widen(g[i], m_like)
        u_i = _direction(_widen(m[i], m_like), _widen(v[i], m_like), scale, shift, m_like)
        grad_sq += g_i * g_i
        cross += g_i * u_i
        dir_sq += u_i * u_i
    return grad_sq, cross, dir_sq


@njit(inline="always")
def block_sums(blocks, b, g_at, m_at, v_at, g_like, m_like, v_like, prev_scale, prev_shift):
    """SPEC steps 2, 3 over block ``b``: ``⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩`` (float64) with
    ``u = direction(m, v, prev_scale[k], prev_shift[k])`` in the dtype of ``m``.

    Chunks of :data:`CHUNK` elements are summed in the statistics dtype (vectorised lanes), the
    chunks' sums in float64. (``reassoc`` lets the chunk reductions vectorise, ``contract`` fuse
    their multiply-adds; neither assumes anything about NaN or infinity, so a non-finite ``g``
    makes ``⟨g,g⟩`` non-finite.)"""
    k, start, stop = blocks[b, 0], blocks[b, 1], blocks[b, 2]
    scale, shift = _widen(prev_scale[k], m_like), _widen(prev_shift[k], m_like)
    grad_sq = cross = dir_sq = 0.0
    for first in range(start, stop, CHUNK):
        last = min(first + CHUNK, stop)
        g, m = view(g_at[k], first, last, g_like), view(m_at[k], first, last, m_like)
        v = view(v_at[k], first, last, v_like)
        chunk = _chunk_sums(g, m, v, scale, shift, g_like, m_like, v_like)
        grad_sq += np.float64(chunk[0])
        cross += np.float64(chunk[1])
        dir_sq += np.float64(chunk[2])
    return grad_sq, cross, dir_sq


@njit(inline="always")
def add_block_sums(blocks, partial, totals):
    """``totals[k] += partial[b]`` for every block ``b`` of tensor ``k``, in block order (the
    float64 sums of a pass do not depend on how its blocks were shared between threads)."""
    for b in range(blocks.shape[0]):
        for c in range(3):
            totals[blocks[b, 0], c] += partial[b, c]


@njit(inline="always")
def _statistics(blocks, g_at, m_at, v_at, g_like, m_like, v_like, prev_scale, prev_shift, totals):
    """SPEC steps 2, 3: add the :func:`block_sums` of the listed blocks to ``totals[k]`` (float64)."""
    partial = np.empty((blocks.shape[0], 3))
    for b in prange(blocks.shape[0]):
        partial[b, 0], partial[b, 1], partial[b, 2] = block_sums(
            blocks, b, g_at, m_at, v_at, g_like, m_like, v_like, prev_scale, prev_shift
        )
    add_block_sums(blocks, partial, totals)


_STATISTICS_OPTIONS: dict[str, Any] = dict(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
# Two entry points with their own source lines: numba's on-disk cache keys a function by its
# source location, so one function compiled twice (parallel and serial) would share one entry.


@njit(parallel=True, **_STATISTICS_OPTIONS)
def statistics(blocks, g_at, m_at, v_at, g_like, m_like, v_like, prev_scale, prev_shift, totals):
    """:func:`_statistics` with its blocks on numba's thread pool."""
    _statistics(blocks, g_at, m_at, v_at, g_like, m_like, v_like, prev_scale, prev_shift, totals)


@njit(**_STATISTICS_OPTIONS)
def serial_statistics(blocks, g_at, m_at, v_at, g_like, m_like, v_like, prev_scale, prev_shift, totals):
    """:func:`_statistics` on one thread: for passes too small to repay waking the thread pool."""
    _statistics(blocks, g_at, m_at, v_at, g_like, m_like, v_like, prev_scale, prev_shift, totals)


@njit(inline="always")
def _update_elements(p, g, m, v, p_out, m_out, v_out, coefficients, likes):
    """SPEC steps 2, 6, 8, 9 elementwise: read ``θ, g, m, v``, write ``θ', m', v'``.
    ``coefficients``: the tensor's :class:`~neat.kernels.TensorScalars`, ``scale, shift`` of the
    previous step, ``nge, decay, step, shift`` of this one, ``β1, 1 − β1, β2, 1 − β2``, all in the
    dtype of ``m``."""
    p_like, m_like, v_like = likes
    scale, shift_prev, nge, decay, step, shift, keep1, weight1, keep2, weight2 = coefficients
    for i in range(p.size):
        g_i, m_i, v_i = _widen(g[i], m_like), _widen(m[i], m_like), _widen(v[i], m_like)
        # Without NGE for this tensor ĝ = g exactly (u is finite): skip forming u (a root and a divide).
        g_hat = g_i - nge * _direction(m_i, v_i, scale, shift_prev, m_like) if nge != 0 else g_i
        m_next = keep1 * m_i + weight1 * g_hat
        v_next = keep2 * v_i + weight2 * (g_i * g_i)
        p_next = _widen(p[i], m_like) * decay - _direction(m_next, v_next, step, shift, m_like)
        p_out[i], m_out[i], v_out[i] = _narrow(p_next, p_like), _narrow(m_next, m_like), _narrow(v_next, v_like)


@njit(inline="always")
def table_columns(table):
    """The ten :class:`~neat.kernels.TensorScalars` columns of a ``(10, K)`` table, as the tuple of
    rows :func:`update_block` takes."""
    return (table[0], table[1], table[2], table[3], table[4], table[5], table[6], table[7], table[8], table[9])


@njit(inline="always")
def _update(blocks, addresses, likes, scalars, take_step, separate_outputs):
    """SPEC steps 2, 6, 8, 9 over the listed blocks when ``take_step``: read ``θ, g, m, v`` and
    write ``θ, m, v`` in place, or into separate outputs ``θ', m', v'`` when ``separate_outputs``.
    When ``take_step`` is false nothing is written, except that separate outputs get the inputs.

    ``addresses``: ``(θ, g, m, v, θ', m', v')`` arrays of tensor addresses; ``likes``: ``(θ, g, m, v)``
    formats; ``scalars``: the ten :class:`~neat.kernels.TensorScalars` columns (each tensor's
    entries rounded to the dtype of ``m`` as array arithmetic does). The in-place
    case passes the same arrays as inputs and outputs, so that LLVM vectorises it without
    run-time overlap checks (which fail, and fall back to scalar code, for overlapping arrays)."""
    if not (take_step or separate_outputs):
        return
    for b in prange(blocks.shape[0]):
        update_block(blocks, b, addresses, likes, scalars, take_step, separate_outputs)


@njit(inline="always")
def update_block(blocks, b, addresses, likes, scalars, take_step, separate_outputs):
    """:func:`_update` of block ``b``."""
    p_at, g_at, m_at, v_at, p_to, m_to, v_to = addresses
    p_like, g_like, m_like, v_like = likes
    prev_scale, prev_shift, nge, decay, step, shift, beta1, weight1, beta2, weight2 = scalars
    writes = (p_like, m_like, v_like)
    k, start, stop = blocks[b, 0], blocks[b, 1], blocks[b, 2]
    p, g = view(p_at[k], start, stop, p_like), view(g_at[k], start, stop, g_like)
    m, v = view(m_at[k], start, stop, m_like), view(v_at[k], start, stop, v_like)
    p_out, m_out = view(p_to[k], start, stop, p_like), view(m_to[k], start, stop, m_like)
    v_out = view(v_to[k], start, stop, v_like)
    coefficients = (
        _widen(prev_scale[k], m_like),
        _widen(prev_shift[k], m_like),
        _widen(nge[k], m_like),
        _widen(decay[k], m_like),
        _widen(step[k], m_like),
        _widen(shift[k], m_like),
        _widen(beta1[k], m_like),
        _widen(weight1[k], m_like),
        _widen(beta2[k], m_like),
        _widen(weight2[k], m_like),
    )
    if not separate_outputs:
        _update_elements(p, g, m, v, p, m, v, coefficients, writes)
    elif take_step:
        _update_elements(p, g, m, v, p_out, m_out, v_out, coefficients, writes)
    else:  # element by element: a slice assignment here is lost by numba's parfor pass (0.68)
        for i in range(p.size):
            p_out[i], m_out[i], v_out[i] = p[i], m[i], v[i]


@njit(parallel=True, cache=True, error_model="numpy")
def update(blocks, addresses, likes, scalars, finite, separate_outputs):
    """:func:`_update` with its blocks on numba's thread pool (``finite``: a 0-d bool array)."""
    _update(blocks, addresses, likes, scalars, finite[()], separate_outputs)


@njit(cache=True, error_model="numpy")
def serial_update(blocks, addresses, likes, scalars, finite, separate_outputs):
    """:func:`_update` on one thread: for passes too small to repay waking the thread pool."""
    _update(blocks, addresses, likes, scalars, finite[()], separate_outputs)

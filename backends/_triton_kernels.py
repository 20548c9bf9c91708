"""The Triton programs of :mod:`neat.backends.triton_backend` (imports ``triton``).

This file is executed by :func:`neat.backends.triton_backend.kernel_module`, once compiled
(CUDA) and once interpreted (CPU tensors under ``TRITON_INTERPRET=1``), so that both
can coexist in one process whatever the environment was when ``triton`` was imported.

Every launch covers many tensors: program ``pid`` handles ``BLOCK`` elements of tensor
``k = blocks[pid]`` from offset ``blocks[num_blocks + pid] · BLOCK``; the tensors' data pointers
are read from an ``int64`` table ``table[row * num_tensors + k]`` and cast to pointers.
All arithmetic is in the state dtype ``S`` (that of ``m``, ``v``), as in :data:`neat.kernels.GENERIC`.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _pointer(table, row, num_tensors, k, DTYPE: tl.constexpr, ALIGNED: tl.constexpr):
    """Row ``row`` of the pointer table for tensor ``k``, as a ``DTYPE`` pointer (16-byte aligned if ``ALIGNED``)."""
    pointer = tl.load(table + row * num_tensors + k).to(tl.pointer_type(DTYPE))
    if ALIGNED:
        pointer = tl.multiple_of(pointer, 16)
    return pointer


@triton.jit
def _sqrt(x):
    """IEEE-rounded square root (Triton's plain float32 ``sqrt`` is approximate on GPUs)."""
    if x.dtype == tl.float32:
        root = tl.sqrt_rn(x)
    else:
        root = tl.sqrt(x)
    return root


@triton.jit
def _div(x, y):
    """IEEE-rounded division (Triton's plain float32 ``/`` is approximate on GPUs)."""
    if x.dtype == tl.float32:
        quotient = tl.div_rn(x, y)
    else:
        quotient = x / y
    return quotient


@triton.jit
def _direction(m, v, scale, shift):
    """``m · scale / (√v + shift)``, 0 where ``√v + shift = 0`` (SPEC steps 2, 9)."""
    denominator = _sqrt(v) + shift
    positive = denominator > 0
    safe = tl.where(positive, denominator, tl.full(denominator.shape, 1.0, denominator.dtype))
    return tl.where(positive, _div(m * scale, safe), tl.full(denominator.shape, 0.0, denominator.dtype))


@triton.jit
def _sum(x, axis: tl.constexpr):
    """``tl.sum`` (replaced in the interpreted build, see ``triton_backend.kernel_module``)."""
    return tl.sum(x, axis=axis)


@triton.jit
def _load(pointer, mask):
    """``*pointer`` (0 outside ``mask``; ``mask=None``: a full block, unmasked)."""
    if mask is None:
        value = tl.load(pointer)
    else:
        value = tl.load(pointer, mask=mask, other=0.0)
    return value


@triton.jit
def _gradient_and_direction(g_ptr, m_ptr, v_ptr, index, mask, scale, shift, S: tl.constexpr):
    """``g`` (in the state dtype) and the previous step's direction ``u`` of one block; 0 outside ``mask``."""
    g = _load(g_ptr + index, mask).to(S)
    m = _load(m_ptr + index, mask)
    v = _load(v_ptr + index, mask)
    return g, _direction(m, v, scale, shift)


@triton.jit
def statistics_kernel(
    blocks,
    num_blocks,
    block_base,
    numels,
    table,
    num_tensors,
    prev_scale,
    prev_shift,
    partials,
    G: tl.constexpr,
    S: tl.constexpr,
    STATS: tl.constexpr,
    ALIGNED: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """SPEC steps 2, 3 per block: ``partials[block_base + pid]`` = this block's Gram matrix of
    ``(g, u)``, ``[[⟨g,g⟩, ⟨g,u⟩], [⟨u,g⟩, ⟨u,u⟩]]``, in the statistics dtype (one reduction).
    Table rows: ``g, m, v``."""
    pid = tl.program_id(0)
    k = tl.load(blocks + pid)
    offset = tl.load(blocks + num_blocks + pid) * BLOCK
    numel = tl.load(numels + k)
    g_ptr = _pointer(table, 0, num_tensors, k, G, ALIGNED)
    m_ptr = _pointer(table, 1, num_tensors, k, S, ALIGNED)
    v_ptr = _pointer(table, 2, num_tensors, k, S, ALIGNED)
    scale = tl.load(prev_scale + k).to(S)
    shift = tl.load(prev_shift + k).to(S)
    index = offset + tl.arange(0, BLOCK)
    if offset + BLOCK <= numel:  # a full block: unmasked (vectorizable) loads
        g, u = _gradient_and_direction(g_ptr, m_ptr, v_ptr, index, None, scale, shift, S)
    else:
        g, u = _gradient_and_direction(g_ptr, m_ptr, v_ptr, index, index < numel, scale, shift, S)
    pair = tl.join(g.to(STATS), u.to(STATS))  # (BLOCK, 2)
    gram = _sum(pair[:, :, None] * pair[:, None, :], 0)  # (2, 2)
    entry = 2 * tl.arange(0, 2)[:, None] + tl.arange(0, 2)[None, :]
    tl.store(partials + 4 * (block_base + pid) + entry, gram)


@triton.jit
def reduce_kernel(partials, first_block, block_count, sums, STATS: tl.constexpr, RBLOCK: tl.constexpr):
    """``sums[k] = ⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩`` of tensor ``k``: its blocks' Gram matrices summed in a
    fixed order (deterministic: no atomics). One program per tensor."""
    k = tl.program_id(0)
    first = tl.load(first_block + k)
    count = tl.load(block_count + k)
    entry = tl.arange(0, 4)
    total = tl.full([RBLOCK, 4], 0.0, STATS)
    for start in range(0, count, RBLOCK):
        row = start + tl.arange(0, RBLOCK)
        total += tl.load(partials + 4 * (first + row[:, None]) + entry[None, :], mask=row[:, None] < count, other=0.0)
    column = entry - entry // 2  # Gram entries 0, 1, 3 are the columns 0, 1, 2; entry 2 (⟨u,g⟩) is dropped
    tl.store(sums + 3 * k + column, _sum(total, 0), mask=entry != 2)


@triton.jit
def _update_block(pointers, coefficients, index, mask, keep, S: tl.constexpr, INPLACE: tl.constexpr):
    """SPEC steps 2, 6, 8, 9 on one block; out of place, the old values where ``keep`` is false.
    ``pointers``: ``θ, g, m, v`` read, ``θ', m', v'`` written; ``coefficients`` (state dtype):
    ``scale, shift`` of the previous step, ``nge, decay, step, shift`` of this one,
    ``β1, 1 − β1, β2, 1 − β2``."""
    p_ptr, g_ptr, m_ptr, v_ptr, p_out, m_out, v_out = pointers
    prev_scale, prev_shift, nge, decay, step, shift, beta1, weight1, beta2, weight2 = coefficients
    p = _load(p_ptr + index, mask)
    g = _load(g_ptr + index, mask).to(S)
    m = _load(m_ptr + index, mask)
    v = _load(v_ptr + index, mask)
    g_hat = g - nge * _direction(m, v, prev_scale, prev_shift)
    m_next = beta1 * m + weight1 * g_hat
    v_next = beta2 * v + weight2 * (g * g)
    p_next = (p.to(S) * decay - _direction(m_next, v_next, step, shift)).to(p.dtype)
    if not INPLACE:
        p_next = tl.where(keep, p_next, p)
        m_next = tl.where(keep, m_next, m)
        v_next = tl.where(keep, v_next, v)
    tl.store(p_out + index, p_next, mask=mask)
    tl.store(m_out + index, m_next, mask=mask)
    tl.store(v_out + index, v_next, mask=mask)


@triton.jit
def update_kernel(
    blocks,
    num_blocks,
    numels,
    table,
    num_tensors,
    prev_scale,
    prev_shift,
    nge,
    decay,
    step,
    shift,
    betas,
    betas_row_stride,
    betas_tensor_stride,
    finite,
    P: tl.constexpr,
    G: tl.constexpr,
    S: tl.constexpr,
    ALIGNED: tl.constexpr,
    INPLACE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """The update pass per block. Table rows: ``θ, g, m, v`` read, ``θ, m, v`` written;
    ``betas``: the rows ``β1, 1 − β1, β2, 1 − β2``, tensor ``k``'s at ``betas + row ·
    betas_row_stride + k · betas_tensor_stride`` (stride 0: one value for every tensor).
    ``finite`` (bool, 0-d) is read here, never on the host:
    when it is false an in-place step writes nothing and an out-of-place one copies."""
    keep = tl.load(finite)
    if INPLACE:
        run = keep
    else:
        run = tl.full((), 1, tl.int1)
    if run:
        pid = tl.program_id(0)
        k = tl.load(blocks + pid)
        offset = tl.load(blocks + num_blocks + pid) * BLOCK
        numel = tl.load(numels + k)
        pointers = (
            _pointer(table, 0, num_tensors, k, P, ALIGNED),
            _pointer(table, 1, num_tensors, k, G, ALIGNED),
            _pointer(table, 2, num_tensors, k, S, ALIGNED),
            _pointer(table, 3, num_tensors, k, S, ALIGNED),
            _pointer(table, 4, num_tensors, k, P, ALIGNED),
            _pointer(table, 5, num_tensors, k, S, ALIGNED),
            _pointer(table, 6, num_tensors, k, S, ALIGNED),
        )
        coefficients = (
            tl.load(prev_scale + k).to(S),
            tl.load(prev_shift + k).to(S),
            tl.load(nge + k).to(S),
            tl.load(decay + k).to(S),
            tl.load(step + k).to(S),
            tl.load(shift + k).to(S),
            tl.load(betas + k * betas_tensor_stride).to(S),
            tl.load(betas + betas_row_stride + k * betas_tensor_stride).to(S),
            tl.load(betas + 2 * betas_row_stride + k * betas_tensor_stride).to(S),
            tl.load(betas + 3 * betas_row_stride + k * betas_tensor_stride).to(S),
        )
        index = offset + tl.arange(0, BLOCK)
        if offset + BLOCK <= numel:  # a full block: unmasked (vectorizable) loads and stores
            _update_block(pointers, coefficients, index, None, keep, S, INPLACE)
        else:
            _update_block(pointers, coefficients, index, index < numel, keep, S, INPLACE)

"""XLA FFI handlers (numba ``cfunc``) for :mod:`neat.backends.jax_ffi_backend`: the statistics pass
(the compiled loop of :mod:`neat.backends.numba.loops`) and the moments' update (:func:`moments`)
on the buffers of an XLA:CPU custom call.

A handler has the typed XLA FFI C signature ``XLA_FFI_Error* handler(XLA_FFI_CallFrame*)``
(``xla/ffi/api/c_api.h`` under ``jax.ffi.include_dir()``), compiled here as
``intp(intp)``, which has the same calling convention on 64-bit targets; it returns 0 (no
error). It reads the call frame as 64-bit words at the offsets below (those of c_api.h's
structs on an LP64 target) and answers XLA's two kinds of call:

* a metadata query (``extension_start`` is an ``XLA_FFI_Metadata_Extension``): it fills in
  the FFI API version its layouts follow, no traits and no state type, and returns;
* the execute stage (``stage == XLA_FFI_ExecutionStage_EXECUTE``): it runs the pass. Other
  stages are not registered (only an execute handler is) and return at once.

Buffers are used as given; their dtypes are fixed by the Python side, which registers one
handler per element dtype (:data:`DTYPES`). The frame and the buffers are read and written
through :func:`neat.backends.numba.unsafe.view`.

Loaded at the first use of the compiled kernels (:mod:`neat.backends.numba.first_use`).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cfunc, njit, prange, types

from neat.backends.numba import loops
from neat.backends.numba.loops import _direction
from neat.backends.numba.unsafe import view

#: The FFI API version whose struct layouts the handlers read (``XLA_FFI_API_MAJOR/MINOR`` of c_api.h).
API_VERSION = (0, 3)

# Byte offsets in c_api.h's structs (LP64).
_CALL_FRAME_EXTENSION, _CALL_FRAME_STAGE = 8, 32
_ARGS_SIZE, _ARGS_POINTERS = 56, 72  # XLA_FFI_Args at 40: size, types, args
_RETS_SIZE, _RETS_POINTERS = 96, 112  # XLA_FFI_Rets at 80: size, types, rets
_EXTENSION_TYPE, _EXTENSION_METADATA = 8, 24  # XLA_FFI_Metadata_Extension: base {size, type, next}, metadata
_METADATA_API_VERSION, _METADATA_TRAITS, _METADATA_STATE_TYPE = 8, 32, 40
_API_VERSION_SIZE = 24  # XLA_FFI_Api_Version: struct_size, extension_start, major, minor
_BUFFER_DTYPE, _BUFFER_DATA, _BUFFER_RANK, _BUFFER_DIMS = 16, 24, 32, 40
_METADATA_EXTENSION_TYPE, _EXECUTE_STAGE = 1, 3
_F32, _F64 = 11, 12  # XLA_FFI_DataType

_WORD, _INT32 = np.empty(0, np.int64), np.empty(0, np.int32)
_BOOL, _BYTES = np.empty(0, np.bool_), np.empty(0, np.uint8)
_FLOAT32, _FLOAT64 = np.empty(0, np.float32), np.empty(0, np.float64)
#: Element dtypes the handlers are compiled for, by name.
DTYPES = {"float32": _FLOAT32, "float64": _FLOAT64}


@njit(inline="always")
def _word(address):
    return view(address, 0, 1, _WORD)[0]


@njit(inline="always")
def _int32(address):
    return view(address, 0, 1, _INT32)[0]


@njit
def _answered_query(frame) -> bool:
    """Fill in the metadata extension if ``frame`` carries one (then ``True``), else ``False``."""
    extension = _word(frame + _CALL_FRAME_EXTENSION)
    if extension == 0 or _int32(extension + _EXTENSION_TYPE) != _METADATA_EXTENSION_TYPE:
        return False
    metadata = _word(extension + _EXTENSION_METADATA)
    version = view(metadata + _METADATA_API_VERSION, 0, 2, _WORD)
    version[0], version[1] = _API_VERSION_SIZE, 0
    numbers = view(metadata + _METADATA_API_VERSION + 16, 0, 2, _INT32)
    numbers[0], numbers[1] = API_VERSION[0], API_VERSION[1]
    view(metadata + _METADATA_TRAITS, 0, 1, _INT32)[0] = 0
    view(metadata + _METADATA_STATE_TYPE, 0, 1, _WORD)[0] = 0
    return True


@njit
def _buffers(frame, size_at, pointers_at, first, count):
    """Data addresses and element counts of ``count`` buffers from position ``first`` of the
    frame's arguments (or results: ``size_at, pointers_at`` say which)."""
    pointers = view(_word(frame + pointers_at), first, first + count, _WORD)
    addresses, sizes = np.empty(count, np.int64), np.empty(count, np.int64)
    for i in range(count):
        buffer = pointers[i]
        dims = view(_word(buffer + _BUFFER_DIMS), 0, _word(buffer + _BUFFER_RANK), _WORD)
        size = 1
        for d in dims:
            size *= d
        addresses[i], sizes[i] = _word(buffer + _BUFFER_DATA), size
    return addresses, sizes


@njit
def _rows(address, rows, count, like):
    """The ``rows`` rows of a ``(rows, count)`` array at ``address``, as a list of 1-D views."""
    return [view(address + r * count * like.itemsize, 0, count, like) for r in range(rows)]


def _statistics_handler(like):
    """The statistics pass (SPEC steps 2, 3) as an FFI handler for tensors of ``like``'s dtype.

    Arguments: ``g_1..g_K, m_1..m_K, v_1..v_K`` and the ``(2, K)`` columns ``prev_scale,
    prev_shift`` (in the tensors' dtype); result: the ``(K, 3)`` sums ``⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩``,
    float32 or float64, accumulated in float64."""

    @cfunc(types.intp(types.intp), cache=True)
    def handler(frame):
        if _answered_query(frame) or _int32(frame + _CALL_FRAME_STAGE) != _EXECUTE_STAGE:
            return 0
        count = (_word(frame + _ARGS_SIZE) - 1) // 3
        tensors, sizes = _buffers(frame, _ARGS_SIZE, _ARGS_POINTERS, 0, 3 * count)
        columns, _ = _buffers(frame, _ARGS_SIZE, _ARGS_POINTERS, 3 * count, 1)
        previous = _rows(columns[0], 2, count, like)
        totals = np.zeros((count, 3))
        blocks = loops.block_table(sizes[:count])
        g_at, m_at, v_at = tensors[:count], tensors[count : 2 * count], tensors[2 * count :]
        # Each loop is called by name: a function chosen into a variable is a first-class function
        # value, typed once for the dtype compiled first and refused for the next (numba lowering).
        if sizes[:count].sum() >= loops.PARALLEL_ELEMENTS:
            loops.statistics(blocks, g_at, m_at, v_at, like, like, like, previous[0], previous[1], totals)
        else:
            loops.serial_statistics(blocks, g_at, m_at, v_at, like, like, like, previous[0], previous[1], totals)
        result = view(_word(frame + _RETS_POINTERS), 0, 1, _WORD)[0]
        _store(_word(result + _BUFFER_DATA), _int32(result + _BUFFER_DTYPE), totals.ravel())
        return 0

    return handler


@njit
def _store(address, dtype, values):
    """Write float64 ``values`` at ``address`` as float32 or float64 (``XLA_FFI_DataType``)."""
    if dtype == _F64:
        view(address, 0, values.size, _FLOAT64)[:] = values
    else:
        target = view(address, 0, values.size, _FLOAT32)
        for i in range(values.size):
            target[i] = np.float32(values[i])


@njit(inline="always")
def _moments(blocks, g_at, m_at, v_at, like, columns):
    """SPEC steps 2, 6, 8 in place over the listed blocks: ``ĝ = g − nge · u`` with
    ``u = direction(m, v, prev_scale, prev_shift)``, ``m ← β1 m + (1 − β1) ĝ``,
    ``v ← β2 v + (1 − β2) g²``, all in ``like``'s dtype. ``columns``: the per-tensor
    ``prev_scale, prev_shift, nge, β1, 1 − β1, β2, 1 − β2``."""
    for b in prange(blocks.shape[0]):
        k, start, stop = blocks[b, 0], blocks[b, 1], blocks[b, 2]
        g, m = view(g_at[k], start, stop, like), view(m_at[k], start, stop, like)
        v = view(v_at[k], start, stop, like)
        scale, shift, nge = columns[0][k], columns[1][k], columns[2][k]
        keep1, weight1, keep2, weight2 = columns[3][k], columns[4][k], columns[5][k], columns[6][k]
        for i in range(stop - start):
            g_i, m_i, v_i = g[i], m[i], v[i]
            g_hat = g_i - nge * _direction(m_i, v_i, scale, shift, like)
            m[i] = keep1 * m_i + weight1 * g_hat
            v[i] = keep2 * v_i + weight2 * (g_i * g_i)


# Two entry points with their own source lines (numba's cache keys a function by its location).
@njit(parallel=True, cache=True, error_model="numpy")
def moments(blocks, g_at, m_at, v_at, like, columns):
    """:func:`_moments` with its blocks on numba's thread pool."""
    _moments(blocks, g_at, m_at, v_at, like, columns)


@njit(cache=True, error_model="numpy")
def serial_moments(blocks, g_at, m_at, v_at, like, columns):
    """:func:`_moments` on one thread, for passes too small to repay waking the thread pool."""
    _moments(blocks, g_at, m_at, v_at, like, columns)


@njit
def _copy_unless_same(source, target, sizes, itemsize):
    """Copy each tensor at ``source[k]`` to ``target[k]`` where the two addresses differ."""
    for k in range(sizes.size):
        if source[k] != target[k]:
            view(target[k], 0, sizes[k] * itemsize, _BYTES)[:] = view(source[k], 0, sizes[k] * itemsize, _BYTES)


def _moments_handler(like):
    """The moments' update (SPEC steps 2, 6, 8) as an FFI handler for tensors of ``like``'s dtype.

    Arguments: ``g_1..g_K, m_1..m_K, v_1..v_K``, the ``(7, K)`` columns ``prev_scale, prev_shift,
    nge, β1, 1 − β1, β2, 1 − β2`` (in the tensors' dtype), and ``finite`` (a 0-d bool); results:
    ``m', v'``, aliased to ``m, v`` (XLA gives them the inputs' buffers, or copies of the inputs;
    any other buffer gets the inputs first). Nothing changes when ``finite`` is false (SPEC step 0)."""

    @cfunc(types.intp(types.intp), cache=True)
    def handler(frame):
        if _answered_query(frame) or _int32(frame + _CALL_FRAME_STAGE) != _EXECUTE_STAGE:
            return 0
        count = (_word(frame + _ARGS_SIZE) - 2) // 3
        read, sizes = _buffers(frame, _ARGS_SIZE, _ARGS_POINTERS, 0, 3 * count)
        small, _ = _buffers(frame, _ARGS_SIZE, _ARGS_POINTERS, 3 * count, 2)
        written, _ = _buffers(frame, _RETS_SIZE, _RETS_POINTERS, 0, 2 * count)
        _copy_unless_same(read[count:], written, sizes[count:], like.itemsize)
        if view(small[1], 0, 1, _BOOL)[0]:
            blocks = loops.block_table(sizes[:count])
            columns = _rows(small[0], 7, count, like)
            if sizes[:count].sum() >= loops.PARALLEL_ELEMENTS:  # by name, as in the statistics handler
                moments(blocks, read[:count], written[:count], written[count:], like, columns)
            else:
                serial_moments(blocks, read[:count], written[:count], written[count:], like, columns)
        return 0

    return handler


#: ``{dtype name: (statistics handler, update handler)}``, compiled on first use.
_HANDLERS: dict = {}


def handlers(dtype_name: str):
    """The two compiled handlers for tensors of ``dtype_name`` (``"float32"`` or ``"float64"``)."""
    if dtype_name not in _HANDLERS:
        numba.get_num_threads()  # starts the thread pool, whose symbols a cached parallel cfunc links to
        like = DTYPES[dtype_name]
        _HANDLERS[dtype_name] = (_statistics_handler(like), _moments_handler(like))
    return _HANDLERS[dtype_name]

"""Every operation of the numba kernels that takes an integer for memory or for code.

The compiled loops reach the tensors through their data addresses (:func:`view`), the NumPy
addresses are read from the arrays' object headers (:func:`numpy_addresses`), and the OpenMP
passes call torch's OpenMP runtime through the addresses of its entry points (:func:`start_region`,
:func:`ask`, :func:`torch_runtime`). Nothing here can check what it is given, and nothing checks
bounds; so every caller guarantees:

* **Addresses.** An address given to :func:`view` is that of the data of a C-contiguous array
  (a NumPy array, a torch CPU tensor, an XLA buffer or call frame of the custom call a handler
  is running for) of at least ``stop`` elements of ``like``'s dtype, aligned to the element size
  (as the allocators of those libraries align); tensors are read in the storage formats of
  :data:`neat.backends.numba.loops.LIKES`.
* **Lengths.** Every tensor has the same number of elements in every role (checked by
  ``kernels._sizes``), the block tables are built from those sizes, and the per-tensor columns
  are ``(K,)`` arrays (checked by ``kernels._host``): no index reaches past an array.
* **Liveness.** The arrays behind the addresses stay alive, and are neither resized nor freed,
  until the compiled call that was given their addresses returns: the Python caller holds them
  (its argument lists) for the whole call, and no view outlives that call.
* **Writes.** Arrays written through views are writable (``check_writable``) and are either the
  arrays read (in place: the same addresses) or fresh arrays that overlap nothing.
* **Object memory.** :func:`read_words` reads at ``id()`` of objects alive during the call, at an
  offset inside them: :func:`numpy_addresses` reads ``PyArrayObject.data`` only at the offset a
  probe array verified.
* **Foreign calls.** :func:`start_region` gets ``GOMP_parallel`` of a runtime loaded for good
  (:func:`torch_runtime`: torch links it, and ``ctypes`` never unloads a library), the address of
  a compiled ``void(intp)`` ``cfunc`` that stays alive (the OpenMP workers are kept for the
  process) and the address of argument words that live until it returns (it returns once every
  thread of the region is done). It is entered by one thread at a time
  (``kernels._ONE_CALL_AT_A_TIME``, which also keeps numba's workqueue pool to one caller), never
  from inside a region. :func:`ask` gets an argument-less ``int`` function of that runtime and
  runs on a thread of a region.

Loaded at the first use of the compiled kernels (:mod:`neat.backends.numba.first_use`).
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os

import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


@intrinsic
def _pointer(typingctx, address, like):
    """``address`` (an integer) as a pointer to elements of ``like``'s dtype."""
    signature = types.CPointer(like.dtype)(address, like)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(sig.return_type))

    return signature, codegen


@njit(inline="always")
def view(address, start, stop, like):
    """Elements ``start:stop`` of the 1-D array of ``like``'s dtype at ``address``, as an array
    indexed from 0 (so that LLVM sees non-negative indices: no wrap-around, loops vectorise)."""
    return numba.carray(_pointer(address + start * like.itemsize, like), stop - start)  # type: ignore[call-arg]


@njit(cache=True)
def read_words(addresses, offset):
    """The ``int64`` stored at each ``addresses[i] + offset``."""
    words = np.empty_like(addresses)
    for i in range(addresses.size):
        words[i] = view(addresses[i] + offset, 0, 1, addresses)[0]
    return words


def numpy_addresses(arrays) -> np.ndarray:
    """Data addresses of ndarrays, read from their ``PyArrayObject.data`` fields in one compiled
    call where that layout was verified (``ndarray.ctypes.data`` costs ~1 µs an array), else
    through ``ndarray.ctypes``."""
    offset = _data_field_offset()
    if offset is None:
        return np.fromiter((a.ctypes.data for a in arrays), np.int64, len(arrays))
    return read_words(np.fromiter(map(id, arrays), np.int64, len(arrays)), offset)


@functools.cache
def _data_field_offset() -> int | None:
    """The offset of ``PyArrayObject.data``: right after the object header (NumPy's C API), if
    reading it there gives ``ndarray.ctypes.data`` for a probe array; else ``None``."""
    probe, offset = np.empty(3), object.__basicsize__
    found = read_words(np.asarray([id(probe)], np.int64), offset)[0]
    return offset if found == probe.ctypes.data else None


@intrinsic
def start_region(typingctx, parallel, worker, data, threads):
    """``GOMP_parallel(worker, data, threads, 0)`` through the function at address ``parallel``:
    runs ``worker(data)`` on ``threads`` threads of the OpenMP pool and returns when all are done."""
    signature = types.void(types.int64, types.int64, types.int64, types.int64)

    def codegen(context, builder, sig, args):
        pointer, int32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        function_type = ir.FunctionType(ir.VoidType(), [pointer, pointer, int32, int32])
        function = builder.inttoptr(args[0], function_type.as_pointer())
        builder.call(
            function,
            [
                builder.inttoptr(args[1], pointer),
                builder.inttoptr(args[2], pointer),
                builder.trunc(args[3], int32),
                ir.Constant(int32, 0),
            ],
        )
        return context.get_dummy_value()

    return signature, codegen


@intrinsic
def ask(typingctx, function):
    """The ``int`` returned by the argument-less C function at address ``function``
    (``omp_get_thread_num``, ``omp_get_num_threads``)."""
    signature = types.int64(types.int64)

    def codegen(context, builder, sig, args):
        function_type = ir.FunctionType(ir.IntType(32), [])
        value = builder.call(builder.inttoptr(args[0], function_type.as_pointer()), [])
        return builder.sext(value, ir.IntType(64))

    return signature, codegen


class Runtime:
    """The entry points of a loaded OpenMP runtime, as addresses."""

    def __init__(self, library: ctypes.CDLL):
        self.parallel, self.thread_num, self.num_threads = (
            int(ctypes.cast(getattr(library, name), ctypes.c_void_p).value or 0)
            for name in ("GOMP_parallel", "omp_get_thread_num", "omp_get_num_threads")
        )


@functools.cache
def torch_runtime() -> Runtime | None:
    """torch's OpenMP runtime (shipped in ``torch/lib``), or None when it has none we can call."""
    import torch

    folder = os.path.join(os.path.dirname(torch.__file__), "lib")
    for pattern in ("libgomp*.so*", "libomp*.so*", "libiomp5*.so*", "libomp*.dylib", "libiomp5*.dylib"):
        for path in sorted(glob.glob(os.path.join(folder, pattern))):
            try:
                return Runtime(ctypes.CDLL(path))
            except (OSError, AttributeError):
                continue
    return None

"""The two passes of a fused numba step on the OpenMP thread pool that torch runs on.

Waking numba's own thread pool costs about 120 µs a launch on a 2-core machine, more than a
whole step of a small model, and numba's OpenMP layer links a second OpenMP runtime whose
spinning threads take the cores from torch's. Where torch is loaded, its OpenMP runtime
(``libgomp``, or an LLVM/Intel runtime with the same ``GOMP_parallel`` entry point) is awake
right after torch's own operations and starts a parallel region in about a microsecond. A pass
then runs as ``GOMP_parallel(worker, arguments, threads)``: the worker (a numba ``cfunc``,
one per combination of storage formats) runs on each thread of the pool, thread ``t`` of ``n``
taking the ``t``-th of ``n`` contiguous runs of the block table with about equal numbers of
elements (:func:`_share`; the same blocks in both passes: one run per thread reads memory faster
than every ``n``-th block, 3–4 % on GPT-2's shapes), and the calling thread waits for the
region to end. The statistics of each block are kept apart and added in block order afterwards,
so the sums are those of the serial pass bit for bit. The region, the runtime and the raw
memory of the argument words are reached through :mod:`neat.backends.numba.unsafe`.

Loaded at the first use of the compiled kernels (:mod:`neat.backends.numba.first_use`).
"""

from __future__ import annotations

import functools
import sys

import numpy as np
from numba import cfunc, njit, types

from neat.backends.numba import loops
from neat.backends.numba.unsafe import ask, start_region, torch_runtime, view

#: Passes over fewer elements run on the calling thread (a region costs ~1 µs to start, and
#: a small pass stays in one core's cache).
OPENMP_ELEMENTS = 1 << 15

# Slots of a pass's argument words (int64): the runtime's thread functions, the block table
# and its number of elements, the tensors' address arrays, and the per-tensor arrays of the step.
(
    _THREAD_NUM,
    _NUM_THREADS,
    _BLOCK_COUNT,
    _BLOCKS,
    _ELEMENTS,
    _TENSORS,
    _PARAMS,
    _GRADS,
    _EXP_AVG,
    _EXP_AVG_SQ,
    _DIRECTION,
    _PARTIAL,
    _SCALARS,
) = range(13)
ARGUMENT_WORDS = 13
# Slots of the pool description handed to the compiled step: how it runs its passes.
SERIAL, NUMBA_POOL, OPENMP = 0, 1, 2
MODE, _PARALLEL, _POOL_THREAD_NUM, _POOL_NUM_THREADS, _THREADS, _STATISTICS_WORKER, _UPDATE_WORKER = range(7)
POOL_WORDS = 7

_WORD, _FLOAT64 = np.empty(0, np.int64), np.empty(0, np.float64)


@njit(inline="always")
def _table(words, slot, rows, columns, like):
    return view(words[slot], 0, rows * columns, like).reshape((rows, columns))


@njit(inline="always")
def _addresses(words, slot):
    """The tensors' addresses of one role (``θ``, ``g``, ``m`` or ``v``)."""
    return view(words[slot], 0, words[_TENSORS], _WORD)


@njit(inline="always")
def _share(blocks, elements, thread, threads):
    """The contiguous run of blocks of thread ``thread`` of ``threads``: the blocks whose middle
    element lies in the thread's ``1/threads`` of the ``elements`` (a run per thread, of about equal
    elements, whatever the blocks' sizes), as a ``range``."""
    count = blocks.shape[0]
    first, last, done = count, count, 0
    for b in range(count):
        size = blocks[b, 2] - blocks[b, 1]
        middle = (2 * done + size) * threads  # 2 · threads · (the block's middle element)
        if first == count and middle >= 2 * thread * elements:
            first = b
        if middle >= 2 * (thread + 1) * elements:
            last = b
            break
        done += size
    return range(first, last)


@njit(inline="always")
def _this_thread(data):
    """The argument words at ``data``, the block table, and this thread's blocks (:func:`_share`
    by the region's actual number of threads)."""
    words = view(data, 0, ARGUMENT_WORDS, _WORD)
    blocks = _table(words, _BLOCKS, words[_BLOCK_COUNT], 3, _WORD)
    mine = _share(blocks, words[_ELEMENTS], ask(words[_THREAD_NUM]), ask(words[_NUM_THREADS]))
    return words, blocks, mine


def _statistics_worker(g_like, m_like, v_like):
    """The statistics pass (SPEC steps 2, 3) of one thread: the sums of its blocks into ``partial``."""

    @cfunc(types.void(types.intp), cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
    def worker(data):
        words, blocks, mine = _this_thread(data)
        g_at, m_at, v_at = _addresses(words, _GRADS), _addresses(words, _EXP_AVG), _addresses(words, _EXP_AVG_SQ)
        direction = _table(words, _DIRECTION, 4, words[_TENSORS], m_like)
        partial = _table(words, _PARTIAL, blocks.shape[0], 3, _FLOAT64)
        for b in mine:
            partial[b, 0], partial[b, 1], partial[b, 2] = loops.block_sums(
                blocks, b, g_at, m_at, v_at, g_like, m_like, v_like, direction[0], direction[2]
            )

    return worker


def _update_worker(p_like, g_like, m_like, v_like):
    """The in-place update pass (SPEC steps 2, 6, 8, 9) of one thread, over its blocks."""
    likes = (p_like, g_like, m_like, v_like)

    @cfunc(types.void(types.intp), cache=True, error_model="numpy")
    def worker(data):
        words, blocks, mine = _this_thread(data)
        p_at, g_at = _addresses(words, _PARAMS), _addresses(words, _GRADS)
        m_at, v_at = _addresses(words, _EXP_AVG), _addresses(words, _EXP_AVG_SQ)
        scalars = _table(words, _SCALARS, 10, words[_TENSORS], m_like)
        columns = loops.table_columns(scalars)
        in_place = (p_at, g_at, m_at, v_at, p_at, m_at, v_at)
        for b in mine:
            loops.update_block(blocks, b, in_place, likes, columns, True, False)

    return worker


@njit(inline="always")
def statistics(pool, words, blocks, partial, totals):
    """The statistics pass on the OpenMP pool: ``words`` hold the pass's arrays (see the slots
    above), ``partial`` gets each block's sums, ``totals`` their sums per tensor in block order."""
    start_region(pool[_PARALLEL], pool[_STATISTICS_WORKER], words.ctypes.data, pool[_THREADS])
    loops.add_block_sums(blocks, partial, totals)


@njit(inline="always")
def update(pool, words):
    """The in-place update pass on the OpenMP pool."""
    start_region(pool[_PARALLEL], pool[_UPDATE_WORKER], words.ctypes.data, pool[_THREADS])


@njit(inline="always")
def argument_words(blocks, addresses, direction, partial, scalars, pool):
    """The argument words of both passes of a fused step (``addresses``: ``θ, g, m, v``)."""
    p_at, g_at, m_at, v_at = addresses
    words = np.empty(ARGUMENT_WORDS, np.int64)
    words[_THREAD_NUM], words[_NUM_THREADS] = pool[_POOL_THREAD_NUM], pool[_POOL_NUM_THREADS]
    words[_BLOCK_COUNT], words[_BLOCKS], words[_TENSORS] = blocks.shape[0], blocks.ctypes.data, p_at.size
    words[_ELEMENTS] = np.sum(blocks[:, 2] - blocks[:, 1])
    words[_PARAMS], words[_GRADS] = p_at.ctypes.data, g_at.ctypes.data
    words[_EXP_AVG], words[_EXP_AVG_SQ] = m_at.ctypes.data, v_at.ctypes.data
    words[_DIRECTION], words[_PARTIAL] = direction.ctypes.data, partial.ctypes.data
    words[_SCALARS] = scalars.ctypes.data
    return words


def pool(formats: tuple, stats_format: str, elements: int, numba_pool: bool) -> np.ndarray:
    """How a fused step over ``elements`` elements of storage ``formats`` (dtype characters of
    ``θ, g, m, v``) runs its passes: on torch's OpenMP pool when torch is loaded (with
    ``torch.get_num_threads()`` threads; the workers read the step's per-tensor arrays in the
    format of ``m``, which must be the statistics dtype's, ``stats_format``), else on numba's
    pool when ``numba_pool``, else on the calling thread."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None and elements >= OPENMP_ELEMENTS else 1
    return _pool(formats, formats[2] == stats_format and threads > 1, threads, numba_pool)


@functools.lru_cache(maxsize=64)
def _pool(formats: tuple, openmp: bool, threads: int, numba_pool: bool) -> np.ndarray:
    """:func:`pool`'s words (read-only), cached per signature."""
    words = np.zeros(POOL_WORDS, np.int64)
    runtime = torch_runtime() if openmp else None
    if runtime is not None:
        statistics_worker, update_worker = _workers(formats)
        entries = (runtime.parallel, runtime.thread_num, runtime.num_threads)
        words[:] = (OPENMP, *entries, threads, statistics_worker.address, update_worker.address)
    else:
        words[MODE] = NUMBA_POOL if numba_pool else SERIAL
    words.flags.writeable = False
    return words


@functools.cache
def _workers(formats: tuple) -> tuple:
    """The two workers for storage formats ``θ, g, m, v`` (compiled on first use, cached on disk)."""
    p_like, g_like, m_like, v_like = (loops.LIKES[np.dtype(f).type] for f in formats)  # formats: dtype chars
    return _statistics_worker(g_like, m_like, v_like), _update_worker(p_like, g_like, m_like, v_like)

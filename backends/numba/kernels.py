"""The ``"numba"`` kernel set and its registration: fused multi-tensor CPU kernels for NumPy arrays
and torch CPU tensors.

Each pass of a step (SPEC "Cost") is ONE compiled, parallel call over all tensors
(:mod:`neat.backends.numba.loops`): the tensors travel as arrays of data addresses, cut
into blocks by a table cached per tensor-size signature, so the Python work of a pass is
O(K) attribute reads (addresses, sizes, dtypes, contiguity). The statistics pass reads
``g, m, v`` once; the update pass reads ``θ, g, m, v`` once and writes ``θ, m, v`` once.

The per-player game runs on NumPy arrays (:attr:`NumbaKernels.game_xp`), also for torch
tensors, as two compiled calls (:class:`CompiledGame`, :mod:`neat.backends.numba.game`).
numba is optional (``pip install 'neat-nash[cpu]'``) and imported only when the kernels
can apply; the compiled modules are reached through
:func:`~neat.backends.numba.first_use.compiled_modules` only. torch is never imported here,
only recognised when it already is.
"""

from __future__ import annotations

import functools
import operator
import sys
import threading
from collections.abc import Sequence
from typing import Any

import array_api_compat.numpy
import numpy as np

from neat.backends.numba.first_use import CompiledModules, compiled_modules
from neat.backends.numba.layout import step_values
from neat.hookspecs import hookimpl
from neat.kernels import Statistics

#: Storage format of each supported element dtype: the NumPy dtype the compiled loops read
#: (16-bit floats as their bits, see :mod:`neat.backends.numba.loops`).
_NUMPY_FORMATS = {np.dtype(np.float64): np.float64, np.dtype(np.float32): np.float32, np.dtype(np.float16): np.int16}
_TORCH_FORMATS = {"float64": np.float64, "float32": np.float32, "float16": np.int16, "bfloat16": np.uint16}
#: Dtypes ``m`` and ``v`` may have: the compute dtype of a tensor is that of its ``m``.
_STATE_FORMATS = (np.float64, np.float32)


def _on_thread_pool(sizes: tuple[int, ...]) -> bool:
    """Whether a pass over tensors of ``sizes`` is worth numba's thread pool
    (``loops.PARALLEL_ELEMENTS``, read when called; the FFI handlers of the jax_ffi set read
    it when they compile)."""
    return sum(sizes) >= compiled_modules().loops.PARALLEL_ELEMENTS


#: numba's workqueue thread pool (see :mod:`neat.backends.numba.loops`) and torch's OpenMP pool
#: (:mod:`neat.backends.numba.unsafe`) must not be entered from two threads at once.
_ONE_CALL_AT_A_TIME = threading.Lock()


@hookimpl
def neat_step_kernels():
    from neat.kernel_selection import KernelSet

    return KernelSet("numba", NumbaKernels(), numba_unsupported, priority=20)


def numba_unsupported(xp, params: Sequence[Any]) -> str | None:
    """Why the numba kernels cannot run ``params`` (metadata only), or ``None``."""
    first = params[0]
    torch = sys.modules.get("torch")
    if isinstance(first, (np.ndarray, np.generic)):
        bad = sorted(str(dtype) for dtype in {p.dtype for p in params} if dtype not in _NUMPY_FORMATS)
        if bad:
            return f"the numba kernels run NumPy float16/float32/float64 arrays, not {', '.join(bad)}"
    elif torch is not None and isinstance(first, torch.Tensor):
        kinds = {(p.is_cpu, p.layout, p.dtype) for p in params}
        if not all(cpu for cpu, _, _ in kinds):
            return "the numba kernels run torch CPU tensors only"
        bad = sorted(
            str(dtype)
            for _, layout, dtype in kinds
            if layout is not torch.strided or _torch_name(dtype) not in _TORCH_FORMATS
        )
        if bad:
            return f"the numba kernels run dense float16/bfloat16/float32/float64 torch tensors, not {', '.join(bad)}"
    else:
        return "the numba kernels run NumPy arrays and torch CPU tensors only"
    return numba_missing()


@functools.cache
def numba_missing() -> str | None:
    """Why numba cannot be used here (not installed, fails to import), or ``None``. Only checks:
    numba is configured at the first use (:mod:`neat.backends.numba.first_use`)."""
    try:
        import numba  # noqa: F401
    except ImportError as error:
        return f"numba is not available ({error}); install it with: pip install 'neat-nash[cpu]'"
    return None


def _torch_name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


class NumbaKernels:
    """:class:`neat.kernels.StepKernels` as two compiled multi-tensor passes (SPEC "Cost").

    Same arithmetic as :data:`neat.kernels.GENERIC`, element by element, in the dtype of
    ``m``; the sums ``⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩`` are accumulated in float64 (deterministically:
    fixed blocks, added in order). The update pass recomputes ``u`` from the old ``m, v``.
    Arrays that are not C-contiguous go through contiguous copies (written back in place).
    A fused in-place step (:meth:`fused_play`) runs its passes on torch's OpenMP pool where torch
    is loaded (:mod:`neat.backends.numba.openmp`), otherwise on numba's pool or one thread.
    """

    name = "numba"
    #: The game of a step is played on NumPy arrays (also for torch tensors), compiled.
    game_xp = array_api_compat.numpy

    def __init__(self):
        self.game = CompiledGame()

    def statistics(self, xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype):
        """SPEC steps 2, 3: rows ``⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩`` (NumPy, ``stats_dtype``), no direction kept."""
        loops = compiled_modules().loops
        library = _library(grads[0])
        roles = [library.contiguous(arrays)[0] for arrays in (grads, exp_avg, exp_avg_sq)]
        sizes = _sizes(library, roles)
        addresses = [library.addresses(arrays) for arrays in roles]
        previous = (_host(scalars.prev_scale, len(grads)), _host(scalars.prev_shift, len(grads)))
        totals = np.zeros((len(grads), 3))
        for kind, members in _groups(library, roles):
            likes = _likes(library, kind)
            blocks = _block_table(sizes, members)
            loop = loops.statistics if _on_thread_pool(sizes) else loops.serial_statistics
            with _ONE_CALL_AT_A_TIME:
                loop(blocks, *addresses, *likes, *previous, totals)
        return Statistics(totals.astype(_numpy_dtype(stats_dtype), copy=False), None)

    def update(self, xp, params, grads, exp_avg, exp_avg_sq, statistics, scalars, finite, inplace=False):
        """SPEC steps 2, 6, 8, 9: new ``(θ, m, v)``; nothing is written when ``finite`` is false."""
        loops = compiled_modules().loops
        library = _library(params[0])
        originals = (params, grads, exp_avg, exp_avg_sq)
        inputs, copied = zip(*(library.contiguous(arrays) for arrays in originals))
        if inplace:
            library.check_writable(params, exp_avg, exp_avg_sq)
            outputs: tuple = (inputs[0], inputs[2], inputs[3])
        else:
            outputs = tuple([library.empty_like(a) for a in arrays] for arrays in (params, exp_avg, exp_avg_sq))
        sizes = _sizes(library, inputs)
        read = [library.addresses(arrays) for arrays in inputs]
        written = (read[0], read[2], read[3]) if inplace else [library.addresses(arrays) for arrays in outputs]
        addresses = (*read, *written)
        columns = _host_columns(scalars, len(params))
        finite = np.asarray(finite, dtype=np.bool_)
        for kind, members in _groups(library, inputs):
            likes = _likes(library, kind)
            blocks = _block_table(sizes, members)
            loop = loops.update if _on_thread_pool(sizes) else loops.serial_update
            with _ONE_CALL_AT_A_TIME:
                loop(blocks, addresses, likes, columns, finite, not inplace)
        if inplace:
            for role, position in ((0, 0), (2, 1), (3, 2)):
                library.write_back(originals[role], outputs[position], copied[role])
            return list(params), list(exp_avg), list(exp_avg_sq)
        return tuple(list(arrays) for arrays in outputs)

    def fused_play(self, params, grads, exp_avg, exp_avg_sq, game_state, tables, config, lr, weight_decay) -> bool:
        """The whole step in place as one compiled call (:func:`neat.backends.numba.game.play`),
        with the new game state written into ``game_state`` (NumPy arrays, or views): returns
        ``True``, or ``False`` having done nothing when the tensors need the two passes (several
        dtype combinations, arrays that are not C-contiguous)."""
        arguments = fused_arguments(params, grads, exp_avg, exp_avg_sq, game_state, tables, config, lr, weight_decay)
        if arguments is None:
            return False
        game = _fused_step_modules().game
        with _ONE_CALL_AT_A_TIME:
            game.play(*arguments)
        return True


def fused_arguments(params, grads, exp_avg, exp_avg_sq, game_state, tables, config, lr, weight_decay):
    """The arguments of the compiled step (:func:`neat.backends.numba.game.play`) for
    :meth:`NumbaKernels.fused_play`, or ``None`` when the arrays need the two passes."""
    openmp = _fused_step_modules().openmp
    library = _library(params[0])
    roles = (params, grads, exp_avg, exp_avg_sq)
    if not all(library.all_contiguous(arrays) for arrays in roles):
        return None
    groups = list(_groups(library, roles))
    if len(groups) > 1:
        return None
    library.check_writable(params, exp_avg, exp_avg_sq)
    sizes = _sizes(library, roles)
    kind = groups[0][0]
    num_tensors = len(params)
    return (
        _block_table(sizes, None),
        library.addresses([*params, *grads, *exp_avg, *exp_avg_sq]).reshape(4, num_tensors),
        _likes(library, kind),
        _counts_as_vectors(game_state),
        tuple(tables),
        step_values(config, lr, weight_decay, num_tensors),
        openmp.pool(_formats(library, kind), game_state.log_step.dtype.char, sum(sizes), _on_thread_pool(sizes)),
    )


class CompiledGame:
    """:func:`neat.game.direction_scalars` and :func:`neat.game.settle` (same arguments, same
    results) as compiled calls on NumPy arrays: :mod:`neat.backends.numba.game`."""

    def direction_scalars(self, xp, tensor_count, stats_dtype, betas, eps) -> tuple:
        compiled = compiled_modules().game
        num_tensors = tensor_count.shape[0]
        rows = np.empty((4, num_tensors), _numpy_dtype(stats_dtype))
        values = np.empty((3, num_tensors))  # each tensor's β1, β2, ε (scalars broadcast)
        values[0], values[1], values[2] = betas[0], betas[1], eps
        compiled.direction_scalars(tensor_count, values[0], values[1], values[2], rows)
        return tuple(rows)

    def settle(self, xp, tables, tensor_sums, game_state, config, lr, weight_decay, direction, out=None):
        from neat.kernels import TensorScalars
        from neat.state import GameState

        compiled = compiled_modules().game
        num_tensors = tables.owner.shape[0]
        state = _counts_as_vectors(game_state)
        new_state = tuple(np.empty_like(field) for field in state) if out is None else _counts_as_vectors(out)
        scalars = np.empty((10, num_tensors), game_state.log_step.dtype)
        values = step_values(config, lr, weight_decay, num_tensors)
        finite = compiled.settle(tensor_sums, tuple(tables), state, values, direction, scalars, new_state)
        if out is None:
            out = GameState(np.reshape(new_state[0], ()), np.reshape(new_state[1], ()), *new_state[2:])
        return TensorScalars(*scalars), np.asarray(finite), out


@functools.cache
def _fused_step_modules() -> CompiledModules:
    """The compiled modules, once numba's thread pool has started: the compiled step links the
    parallel passes, whose entry into the pool numba fills in when the pool starts; a step loaded
    from the on-disk cache does not start it (and would call a null address)."""
    import numba

    modules = compiled_modules()  # first: it chooses the pool's threading layer
    numba.get_num_threads()
    return modules


def _counts_as_vectors(game_state) -> tuple:
    """The fields of a ``GameState`` with the 0-d counts as 1-element views (the compiled
    :func:`~neat.backends.numba.game.settle` reads and writes them)."""
    return (game_state.count.reshape(1), game_state.skipped.reshape(1), *game_state[2:])


class _Arrays:
    """What the kernels need from one array library: addresses, sizes, dtypes, copies."""

    def __init__(self, addresses, size, is_contiguous, contiguous, empty_like, assign, format_of, writable=None):
        self.addresses, self._size, self._is_contiguous, self._contiguous = addresses, size, is_contiguous, contiguous
        self.empty_like, self._assign, self._format_of, self._writable = empty_like, assign, format_of, writable

    def sizes(self, arrays) -> tuple[int, ...]:
        return tuple(map(self._size, arrays))

    def all_contiguous(self, arrays) -> bool:
        return all(map(self._is_contiguous, arrays))

    def contiguous(self, arrays) -> tuple[list, list[int]]:
        """``arrays`` with a C-contiguous copy in place of each that is not, and the copies' positions."""
        if self.all_contiguous(arrays):
            return arrays, []
        copied = [k for k, a in enumerate(arrays) if not self._is_contiguous(a)]
        arrays = list(arrays)
        for k in copied:
            arrays[k] = self._contiguous(arrays[k])
        return arrays, copied

    def write_back(self, originals, work, copied) -> None:
        """Copy the results computed in contiguous copies back into the original arrays."""
        for k in copied:
            self._assign(originals[k], work[k])

    def check_writable(self, *roles) -> None:
        if self._writable is not None and not all(all(map(self._writable, arrays)) for arrays in roles):
            raise ValueError("inplace=True needs writable arrays: the parameters or moments include a read-only one")

    def like(self, dtype) -> np.ndarray:
        """An empty array of the storage format of ``dtype``: tells a compiled loop how to read it."""
        storage = self._format_of(dtype)
        if storage is None:
            raise TypeError(f"the numba kernels cannot run arrays of dtype {dtype}")
        return compiled_modules().loops.LIKES[storage]


def _numpy_addresses(arrays) -> np.ndarray:
    """Data addresses of ndarrays (:func:`neat.backends.numba.unsafe.numpy_addresses`)."""
    return compiled_modules().unsafe.numpy_addresses(arrays)


def _numpy_is_contiguous(array) -> bool:
    """A C-contiguous ``ndarray`` (a NumPy scalar, which has no address, is not)."""
    return isinstance(array, np.ndarray) and array.flags.c_contiguous


def _assign_numpy(target, source):
    target[...] = source


_NUMPY = _Arrays(
    _numpy_addresses,
    operator.attrgetter("size"),
    _numpy_is_contiguous,
    functools.partial(np.array, order="C"),
    functools.partial(np.empty_like, order="C"),
    _assign_numpy,
    _NUMPY_FORMATS.get,
    writable=operator.attrgetter("flags.writeable"),
)


@functools.cache
def _torch_arrays() -> _Arrays:
    import torch

    def addresses(tensors) -> np.ndarray:
        return np.fromiter(map(torch.Tensor.data_ptr, tensors), np.int64, len(tensors))

    return _Arrays(
        addresses,
        torch.Tensor.numel,
        torch.Tensor.is_contiguous,
        torch.Tensor.contiguous,
        functools.partial(torch.empty_like, memory_format=torch.contiguous_format),
        torch.Tensor.copy_,
        lambda dtype: _TORCH_FORMATS.get(_torch_name(dtype)),
    )


def _library(array) -> _Arrays:
    return _NUMPY if isinstance(array, (np.ndarray, np.generic)) else _torch_arrays()


def _sizes(library: _Arrays, roles) -> tuple[int, ...]:
    """Element counts per tensor, the same in every role (else ``ValueError``)."""
    sizes = library.sizes(roles[0])
    for arrays in roles[1:]:
        if library.sizes(arrays) != sizes:
            raise ValueError("the numba kernels need parameters, gradients and moments of equal sizes per tensor")
    return sizes


_DTYPE = operator.attrgetter("dtype")


def _groups(library: _Arrays, roles):
    """``(dtypes of the roles, tensor indices or None for all)`` per distinct combination of
    dtypes across the roles (usually one); :func:`_likes` gives a combination's storage formats."""
    dtypes = [set(map(_DTYPE, arrays)) for arrays in roles]
    if all(len(role) == 1 for role in dtypes):
        yield tuple(role.pop() for role in dtypes), None
        return
    keys = list(zip(*(map(_DTYPE, arrays) for arrays in roles)))
    for kind in sorted(set(keys), key=str):
        yield kind, np.asarray([k for k, key in enumerate(keys) if key == kind], np.int64).tobytes()


@functools.cache
def _formats(library: _Arrays, kind: tuple) -> tuple[str, ...]:
    """The storage formats of :func:`_likes` as dtype characters (hashable)."""
    return tuple(like.dtype.char for like in _likes(library, kind))


@functools.cache
def _likes(library: _Arrays, kind: tuple) -> tuple:
    """The storage formats of one dtype per role; the last two roles, ``m, v``, must be float32/64."""
    likes = tuple(library.like(dtype) for dtype in kind)
    if not all(like.dtype in _STATE_FORMATS for like in likes[-2:]):
        raise TypeError(f"the numba kernels need float32 or float64 moments, got {kind[-2]} and {kind[-1]}")
    return likes


@functools.lru_cache(maxsize=64)
def _block_table(sizes: tuple[int, ...], members: bytes | None) -> np.ndarray:
    """:func:`~neat.backends.numba.loops.block_table` of the listed tensors (all when ``members``
    is None), numbered as in ``sizes``; cached per signature. Read-only."""
    loops = compiled_modules().loops
    size = np.asarray(sizes, np.int64)
    tensors = np.arange(len(size)) if members is None else np.frombuffer(members, np.int64)
    table = loops.block_table(np.ascontiguousarray(size[tensors]))
    table[:, 0] = tensors[table[:, 0]]
    table.flags.writeable = False
    return table


def _host_columns(scalars, count: int) -> tuple:
    """The :class:`~neat.kernels.TensorScalars` as the compiled update reads them: ``(K,)`` NumPy
    columns of one dtype (that of ``step``), a field given as one scalar for all tensors filled in."""
    columns = [_host(column, count) for column in scalars[:6]]
    dtype = columns[4].dtype
    return (*columns, *[_host(c, count) if np.ndim(c) else np.full(count, c, dtype) for c in scalars[6:]])


def _host(column, count: int) -> np.ndarray:
    """A per-tensor ``(K,)`` column (NumPy, or a torch CPU tensor) as a contiguous NumPy array;
    checked, since the compiled loops index it without bounds checks."""
    column = np.ascontiguousarray(column)
    if column.shape != (count,) or column.dtype not in _STATE_FORMATS:
        raise ValueError(
            f"per-tensor scalars must be ({count},) float32 or float64 arrays, got {column.shape} {column.dtype}"
        )
    return column


def _numpy_dtype(dtype) -> np.dtype:
    """The NumPy dtype of a NumPy or torch dtype."""
    return np.dtype(_torch_name(dtype)) if type(dtype).__module__ == "torch" else np.dtype(dtype)

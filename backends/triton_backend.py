"""Triton kernels for torch CUDA tensors (checked on CPU through ``TRITON_INTERPRET=1``).

:class:`TritonKernels` runs the two passes of :mod:`neat.kernels` as multi-tensor Triton
launches: one launch per pass and dtype group over a table of blocks ``(tensor, block
index)`` and a device table of data pointers, plus one deterministic launch that reduces
the statistics' block partials per tensor. The tables are cached per shape signature and
per set of data pointers, so a steady-state in-place step copies nothing from the host,
allocates nothing that depends on values and can be captured in a CUDA graph (an
out-of-place step writes into new tensors, so it builds a new pointer table every time).

Importing this plug-in imports neither torch nor triton.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import importlib.util
import os
import sys
from pathlib import Path
from typing import NamedTuple

from neat.hookspecs import hookimpl
from neat.kernels import Statistics

#: Parameter dtypes the kernels run (by torch name); 16-bit parameters have float32 moments.
SUPPORTED_DTYPES = ("float32", "float64", "float16", "bfloat16")
_KERNEL_FILE = Path(__file__).with_name("_triton_kernels.py")
_TRUE = ("1", "true", "yes", "on", "y")


@hookimpl
def neat_step_kernels():
    from neat.kernel_selection import KernelSet

    # Below numba's 20: on CPU tensors (under the interpreter only) numba stays the default.
    return KernelSet("triton", TritonKernels(), unsupported, priority=15)


def interpreting() -> bool:
    """Whether ``TRITON_INTERPRET`` asks for Triton's CPU interpreter (read at every call)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in _TRUE


@functools.cache
def _triton_missing() -> bool:
    return importlib.util.find_spec("triton") is None


def unsupported(xp, params) -> str | None:
    """Why the Triton kernels cannot run ``params`` (metadata only), or ``None``.

    They run contiguous torch CUDA tensors of :data:`SUPPORTED_DTYPES` on one device, and
    torch CPU tensors too when ``TRITON_INTERPRET=1`` (Triton's interpreter, for tests)."""
    torch = sys.modules.get("torch")
    if torch is None or not all(isinstance(p, torch.Tensor) for p in params):
        return "the triton kernels run torch tensors only"
    if _triton_missing():
        return "triton is not installed (pip install 'neat-nash[triton]')"
    device = params[0].device
    if device.type == "cpu" and not interpreting():
        return "torch CPU tensors run the triton kernels only under Triton's interpreter (TRITON_INTERPRET=1)"
    if device.type not in ("cuda", "cpu"):
        return f"the triton kernels run CUDA tensors, not {device.type} ones"
    for k, p in enumerate(params):
        if p.device != device:
            return f"params[{k}] is on {p.device}, params[0] on {device}"
        if str(p.dtype).removeprefix("torch.") not in SUPPORTED_DTYPES:
            return f"params[{k}] has dtype {p.dtype}; the triton kernels run {', '.join(SUPPORTED_DTYPES)}"
        if not p.is_contiguous():
            return f"params[{k}] is not contiguous"
    return None


@functools.lru_cache(maxsize=2)
def kernel_module(interpret: bool):
    """The Triton programs of ``_triton_kernels.py``, interpreted (CPU) or compiled (CUDA).

    The file is executed once per mode with Triton's ``interpret`` knob set for the
    duration, so the mode does not depend on the environment at import time."""
    import triton

    name = f"{__package__}._triton_kernels_{'interpreted' if interpret else 'compiled'}"
    spec = importlib.util.spec_from_file_location(name, _KERNEL_FILE)
    assert spec is not None and spec.loader is not None, _KERNEL_FILE
    module = importlib.util.module_from_spec(spec)
    with triton.knobs.runtime.scope():
        triton.knobs.runtime.interpret = interpret
        spec.loader.exec_module(module)
    if interpret:
        _plain_helpers(module)
    sys.modules[name] = module
    return module


def _plain_helpers(module) -> None:
    """Make the interpreted kernels call their helpers (``_name``) as plain Python.

    The interpreter re-patches ``triton.language`` at every call of a jitted helper (about
    2 ms, most of an interpreted step), and inside an interpreted kernel it is patched already.
    ``_sum`` becomes the interpreter's reduction with ``tl.sum``'s combine function: Triton's own
    ``tl.sum`` is a compiled-only function when ``TRITON_INTERPRET`` was unset at import."""
    from triton.runtime.interpreter import InterpretedFunction

    for name, value in vars(module).copy().items():
        if name.startswith("_") and isinstance(value, InterpretedFunction):
            setattr(module, name, value.fn)
    module._sum = _interpreted_sum


def _interpreted_sum(x, axis):
    import triton.language as tl

    return tl.reduce(x, axis, tl.standard._sum_combine)


class _Cache:
    """A small least-recently-used map whose values are made on a miss."""

    def __init__(self, size: int):
        self.size = size
        self.entries: collections.OrderedDict = collections.OrderedDict()

    def get(self, key, make):
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        value = self.entries[key] = make()
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return value


class _Group(NamedTuple):
    """The blocks of the tensors sharing one dtype key: a ``(2, num_blocks)`` int64 device table
    (tensor index, block index within the tensor); ``base`` is the group's first block in the partials."""

    dtypes: tuple
    members: tuple
    blocks: object
    num_blocks: int
    base: int


class _Pointers(NamedTuple):
    """Data pointers of ``rows × K`` tensors as an int64 device table, and per group whether
    every pointer of the group is 16-byte aligned (a compile-time hint for vector accesses)."""

    table: object
    aligned: tuple


class _Layout:
    """The block tables of one shape signature (numels and dtype keys of ``K`` tensors), on the device."""

    def __init__(self, keys, numels, block: int, device):
        import torch

        members = collections.defaultdict(list)
        for k, key in enumerate(keys):
            members[key].append(k)
        counts = [-(-n // block) for n in numels]
        first, groups, base = [0] * len(numels), [], 0
        for key, ks in members.items():
            tensors: list[int] = []
            offsets: list[int] = []
            for k in ks:
                first[k] = base + len(tensors)
                tensors += [k] * counts[k]
                offsets += range(counts[k])
            table = torch.tensor([tensors, offsets], dtype=torch.int64).to(device)
            groups.append(_Group(key, tuple(ks), table, len(tensors), base))
            base += len(tensors)
        self.groups, self.total_blocks, self.device = groups, base, device
        self.numels = torch.tensor(numels, dtype=torch.int64).to(device)
        self.first_block = torch.tensor(first, dtype=torch.int64).to(device)
        self.block_count = torch.tensor(counts, dtype=torch.int64).to(device)
        self._pointers = _Cache(8)

    def pointers(self, rows) -> _Pointers:
        """The pointer table of ``rows`` (lists of ``K`` tensors), cached per tuple of addresses."""
        addresses = tuple(t.data_ptr() for row in rows for t in row)
        return self._pointers.get(addresses, lambda: self._pointer_table(addresses, len(rows)))

    def _pointer_table(self, addresses, num_rows) -> _Pointers:
        import torch

        num_tensors = len(addresses) // num_rows
        aligned = tuple(
            all(addresses[r * num_tensors + k] % 16 == 0 for r in range(num_rows) for k in group.members)
            for group in self.groups
        )
        return _Pointers(torch.tensor(addresses, dtype=torch.int64).to(self.device), aligned)


class TritonKernels:
    """:class:`neat.kernels.StepKernels` as Triton programs over all tensors of a step.

    * statistics (SPEC steps 2, 3): per block the Gram matrix of ``(g, u)`` with
      ``u = m·scale/(√v + shift)``, then one program per tensor sums its blocks'
      matrices in a fixed order: no float atomics, no host sync. Returns
      ``Statistics((K, 3) sums, None)``: the update pass recomputes ``u`` from ``m, v``.
    * update (SPEC steps 2, 6, 8, 9): ``ĝ = g − nge·u``, ``m ← β1 m + (1 − β1) ĝ``,
      ``v ← β2 v + (1 − β2) g²``, ``θ ← θ·decay − step·m/(√v + shift)``, all in the
      moments' dtype; ``finite`` is read by the kernel: nothing is written when it is false
      (``inplace=False``: the outputs are copies of the inputs).

    ``block`` elements per program, ``reduce_block`` block partials per step of the reduction;
    tables are cached on the instance (see the module docstring).
    """

    name = "triton"

    def __init__(self, block: int = 1024, reduce_block: int = 256, num_warps: int = 4):
        for name, value in (("block", block), ("reduce_block", reduce_block)):
            if value <= 0 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two, got {value}")
        self.block, self.reduce_block, self.num_warps = block, reduce_block, num_warps
        self._layouts = _Cache(64)
        self._betas = _Cache(8)

    def statistics(self, xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype):
        import torch

        grads = _dense(grads)
        _check_contiguous(exp_avg, "exp_avg")
        _check_contiguous(exp_avg_sq, "exp_avg_sq")
        device, num_tensors = exp_avg[0].device, len(exp_avg)
        layout = self._layout("statistics", [(g.dtype, m.dtype) for g, m in zip(grads, exp_avg)], exp_avg)
        pointers = layout.pointers((grads, exp_avg, exp_avg_sq))
        module = kernel_module(device.type == "cpu")
        prev_scale, prev_shift = _dense((scalars.prev_scale, scalars.prev_shift))
        partials = torch.empty((max(layout.total_blocks, 1), 4), dtype=stats_dtype, device=device)
        sums = torch.empty((num_tensors, 3), dtype=stats_dtype, device=device)
        with _on(device):
            for group, aligned in zip(layout.groups, pointers.aligned):
                grad_dtype, state_dtype = group.dtypes
                module.statistics_kernel[(group.num_blocks,)](
                    group.blocks,
                    group.num_blocks,
                    group.base,
                    layout.numels,
                    pointers.table,
                    num_tensors,
                    prev_scale,
                    prev_shift,
                    partials,
                    G=_triton_dtype(grad_dtype),
                    S=_triton_dtype(state_dtype),
                    STATS=_triton_dtype(stats_dtype),
                    ALIGNED=aligned,
                    BLOCK=self.block,
                    num_warps=self.num_warps,
                )
            module.reduce_kernel[(num_tensors,)](
                partials,
                layout.first_block,
                layout.block_count,
                sums,
                STATS=_triton_dtype(stats_dtype),
                RBLOCK=self.reduce_block,
                num_warps=self.num_warps,
            )
        return Statistics(sums, None)

    def update(self, xp, params, grads, exp_avg, exp_avg_sq, statistics, scalars, finite, inplace=False):
        import torch

        grads = _dense(grads)
        for values, what in ((params, "params"), (exp_avg, "exp_avg"), (exp_avg_sq, "exp_avg_sq")):
            _check_contiguous(values, what)
        device, num_tensors = exp_avg[0].device, len(exp_avg)
        inputs = (list(params), list(exp_avg), list(exp_avg_sq))
        outputs = (
            inputs
            if inplace
            else tuple(
                [torch.empty_like(t, memory_format=torch.contiguous_format) for t in values] for values in inputs
            )
        )
        layout = self._layout(
            "update", [(p.dtype, g.dtype, m.dtype) for p, g, m in zip(params, grads, exp_avg)], exp_avg
        )
        pointers = layout.pointers((inputs[0], grads, inputs[1], inputs[2], *outputs))
        module = kernel_module(device.type == "cpu")
        columns = _dense(scalars[:6])
        coefficients, row_stride, tensor_stride = self._moment_coefficients(scalars[6:], device, num_tensors)
        keep = torch.as_tensor(finite, dtype=torch.bool, device=device)
        with _on(device):
            for group, aligned in zip(layout.groups, pointers.aligned):
                param_dtype, grad_dtype, state_dtype = group.dtypes
                module.update_kernel[(group.num_blocks,)](
                    group.blocks,
                    group.num_blocks,
                    layout.numels,
                    pointers.table,
                    num_tensors,
                    *columns,
                    coefficients,
                    row_stride,
                    tensor_stride,
                    keep,
                    P=_triton_dtype(param_dtype),
                    G=_triton_dtype(grad_dtype),
                    S=_triton_dtype(state_dtype),
                    ALIGNED=aligned,
                    INPLACE=inplace,
                    BLOCK=self.block,
                    num_warps=self.num_warps,
                )
        return outputs

    def _layout(self, kind: str, keys, like) -> _Layout:
        numels = [t.numel() for t in like]
        device = like[0].device
        return self._layouts.get(
            (kind, tuple(keys), tuple(numels), str(device)), lambda: _Layout(keys, numels, self.block, device)
        )

    def _moment_coefficients(self, values, device, num_tensors: int):
        """The moments' coefficients ``β1, 1 − β1, β2, 1 − β2`` (:class:`~neat.kernels.TensorScalars`)
        as a float64 device table and its strides (per coefficient, per tensor): Python floats, one
        for all tensors, as a cached ``(4,)`` table read with tensor stride 0; tensors (0-d, e.g.
        traced or scheduled, or one per tensor) as a ``(4, K)`` table formed on the device."""
        import torch

        if not any(isinstance(value, torch.Tensor) for value in values):
            numbers = tuple(map(float, values))
            table = self._betas.get(
                (numbers, str(device)), lambda: torch.tensor(numbers, dtype=torch.float64).to(device)
            )
            return table, 1, 0
        table = torch.stack(
            [torch.as_tensor(value, dtype=torch.float64, device=device).expand(num_tensors) for value in values]
        )
        return table, num_tensors, 1


def _triton_dtype(dtype):
    import triton.language as tl

    return getattr(tl, str(dtype).removeprefix("torch."))


def _dense(tensors) -> list:
    """Read-only inputs (gradients, per-tensor scalar columns) as contiguous tensors, in the flat
    element order of their contiguous parameters; a copy (on the device) only where one is not."""
    return [t if t.is_contiguous() else t.contiguous() for t in tensors]


def _check_contiguous(tensors, what: str) -> None:
    for k, t in enumerate(tensors):
        if not t.is_contiguous():
            raise ValueError(f"the triton kernels write {what} in place and need it contiguous; {what}[{k}] is not")


def _on(device):
    """Launch on ``device``'s CUDA context (Triton uses the current device's stream)."""
    if device.type == "cuda":
        import torch

        return torch.cuda.device(device)
    return contextlib.nullcontext()

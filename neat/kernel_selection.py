"""The one place that chooses the kernels of a step, for every front end.

Backends register :class:`KernelSet` records through the ``neat_step_kernels``
hook; :data:`neat.kernels.GENERIC` is always available as ``"generic"``. A step
asks :func:`select_kernels` with ``None`` (the highest-priority set that applies
to these arrays), a registered name such as ``"numba"`` or ``"triton"``, or a
:class:`~neat.kernels.StepKernels` object of its own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import array_api_compat

from neat.kernels import GENERIC, StepKernels
from neat.plugins import plugin_manager


@dataclass(frozen=True)
class KernelSet:
    """A named kernel set. ``unsupported(xp, params)`` reads metadata only (types, devices,
    dtypes) and returns why the set cannot run these arrays, or ``None`` when it can.
    Among the sets that can, the highest ``priority`` is the default."""

    name: str
    kernels: StepKernels
    unsupported: Callable[[Any, Sequence[Any]], str | None]
    priority: int = 0


GENERIC_SET = KernelSet("generic", GENERIC, lambda xp, params: None, priority=-1)


@functools.cache
def registered() -> dict[str, KernelSet]:
    """Every kernel set by name: ``"generic"`` and those the plug-ins register."""
    sets = {GENERIC_SET.name: GENERIC_SET}
    for result in plugin_manager().hook.neat_step_kernels():
        for kernel_set in result if isinstance(result, (list, tuple)) else [result]:
            if kernel_set.name in sets:
                raise ValueError(f"two NEAT plug-ins register a kernel set named {kernel_set.name!r}")
            sets[kernel_set.name] = kernel_set
    return sets


def select_kernels(xp, params: Sequence[Any], requested: str | StepKernels | None = None) -> StepKernels:
    """The kernels for a step over ``params`` (see the module docstring); ``ValueError`` naming the
    reason when a requested set does not exist or cannot run these arrays."""
    if requested is not None and not isinstance(requested, str):
        return requested
    if requested is None:
        return default_kernel_set(xp, params).kernels
    sets = registered()
    if requested not in sets:
        raise ValueError(f"unknown kernel set {requested!r}; registered: {sorted(sets)}")
    reason = sets[requested].unsupported(xp, params)
    if reason is not None:
        raise ValueError(f"kernel set {requested!r} cannot run these arrays: {reason}")
    return sets[requested].kernels


def _signature(params: Sequence[Any]) -> tuple:
    """What a kernel set's choice may depend on: array type, device and dtypes."""
    first = params[0]
    return type(first), str(array_api_compat.device(first)), tuple(sorted({str(p.dtype) for p in params}))


_DEFAULTS: dict[tuple, KernelSet] = {}


def default_kernel_set(xp, params: Sequence[Any]) -> KernelSet:
    """The highest-priority registered set that can run ``params`` (cached per array signature)."""
    key = (xp, *_signature(params))
    cached = _DEFAULTS.get(key)
    if cached is None:
        candidates = [s for s in registered().values() if s.unsupported(xp, params) is None]
        cached = _DEFAULTS[key] = max(candidates, key=lambda s: s.priority)
    return cached

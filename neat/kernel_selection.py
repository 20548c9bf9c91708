"""The one place that chooses the kernels of a step, for every front end.

Backends register :class:`KernelSet` records through the ``neat_step_kernels``
hook; :data:`neat.kernels.GENERIC` is always available as ``"generic"``. A front end
asks :func:`select_plan` once, with ``None`` (the highest-priority set that applies
to these arrays), a registered name such as ``"numba"`` or ``"triton"``, or a
:class:`~neat.kernels.StepKernels` object of its own, and keeps the :class:`KernelPlan`
it gets: which passes, where the game is played, whether an in-place step is one fused
call. A registered set has one plan object, shared by every front end that chooses it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import array_api_compat

from neat import game
from neat.kernels import GENERIC, StepKernels
from neat.plugins import plugin_manager


@dataclass(frozen=True)
class KernelPlan:
    """What a step runs (SPEC "Cost"): the kernel set ``name``, its two passes ``kernels``, the
    namespace ``game_xp`` the per-player game is played in (``None``: the arrays'), the game's
    ``rules`` (:mod:`neat.game` or a compiled twin) and ``fused_play``, a whole in-place step in
    one call (``None``: the two passes around the game). Built from a kernels object's optional
    attributes (:class:`~neat.kernels.StepKernels`) by :meth:`of`, the only place that reads them."""

    name: str
    kernels: StepKernels
    game_xp: Any = None
    rules: Any = game
    fused_play: Callable | None = None

    @classmethod
    def of(cls, kernels: StepKernels) -> KernelPlan:
        return cls(
            kernels.name,
            kernels,
            getattr(kernels, "game_xp", None),
            getattr(kernels, "game", None) or game,
            getattr(kernels, "fused_play", None),
        )

    def __repr__(self) -> str:
        where = "the arrays' namespace" if self.game_xp is None else self.game_xp.__name__.rpartition(".")[2]
        rules = "neat.game" if self.rules is game else type(self.rules).__qualname__
        in_place = "one fused call" if self.fused_play is not None else "two passes"
        passes = type(self.kernels).__qualname__
        return f"KernelPlan({self.name!r}: passes {passes}, game {rules} on {where}, in-place step {in_place})"


@dataclass(frozen=True)
class KernelSet:
    """A named kernel set. ``unsupported(xp, params)`` reads metadata only (types, devices,
    dtypes) and returns why the set cannot run these arrays, or ``None`` when it can.
    Among the sets that can, the highest ``priority`` is the default."""

    name: str
    kernels: StepKernels
    unsupported: Callable[[Any, Sequence[Any]], str | None]
    priority: int = 0
    plan: KernelPlan = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "plan", KernelPlan.of(self.kernels))


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


def select_plan(xp, params: Sequence[Any], requested: str | StepKernels | KernelPlan | None = None) -> KernelPlan:
    """The plan of a step over ``params`` (see the module docstring): a plan given is used as it is,
    a kernels object gets a plan of its own, ``None`` or a name the chosen set's plan; ``ValueError``
    naming the reason when a requested set does not exist or cannot run these arrays."""
    if isinstance(requested, KernelPlan):
        return requested
    if requested is not None and not isinstance(requested, str):
        return KernelPlan.of(requested)
    if requested is None:
        return default_kernel_set(xp, params).plan
    sets = registered()
    if requested not in sets:
        raise ValueError(f"unknown kernel set {requested!r}; registered: {sorted(sets)}")
    reason = sets[requested].unsupported(xp, params)
    if reason is not None:
        raise ValueError(f"kernel set {requested!r} cannot run these arrays: {reason}")
    return sets[requested].plan


def check_plan_runs(plan: KernelPlan, xp, params: Sequence[Any]) -> None:
    """``ValueError`` naming the reason when ``plan``, chosen earlier, is a registered set's that
    cannot run ``params`` (a front end's tensors after some joined: SPEC "Growing the game"). A
    plan of a kernels object of the caller's own is not checked: it was given for these arrays."""
    kernel_set = registered().get(plan.name)
    reason = None if kernel_set is None or kernel_set.plan is not plan else kernel_set.unsupported(xp, params)
    if reason is not None:
        raise ValueError(
            f"the kernels chosen at construction ({plan.name!r}) cannot run the new parameters: {reason}; "
            "build the optimizer with kernels that run every parameter"
        )


def select_kernels(xp, params: Sequence[Any], requested: str | StepKernels | KernelPlan | None = None) -> StepKernels:
    """The two passes of :func:`select_plan`'s plan."""
    return select_plan(xp, params, requested).kernels


def plan_of(kernels: StepKernels | KernelPlan) -> KernelPlan:
    """``kernels`` as a plan (a plan is returned as it is). Calls no plug-in hook: traceable."""
    return kernels if isinstance(kernels, KernelPlan) else KernelPlan.of(kernels)


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

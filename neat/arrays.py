"""Array namespaces, dtypes and input checks shared by every entry point.

All checks read metadata only (types, shapes, dtypes): nothing here moves a
value from the device to the host.
"""

from __future__ import annotations

from typing import Any, Sequence

from neat.plugins import plugin_manager


def namespace_of(arrays: Sequence[Any], what: str = "arrays"):
    """The one array-API namespace shared by ``arrays``; ``TypeError`` if none or several."""
    hook = plugin_manager().hook.neat_array_namespace
    by_type: dict[type, Any] = {}
    for array in arrays:
        kind = type(array)
        if kind not in by_type:
            xp = hook(array=array)
            if xp is None:
                raise TypeError(f"{what}: no NEAT backend handles arrays of type {kind.__module__}.{kind.__qualname__}")
            by_type[kind] = xp
    namespaces = {id(xp): xp for xp in by_type.values()}
    if len(namespaces) > 1:
        names = sorted(f"{kind.__module__}.{kind.__qualname__}" for kind in by_type)
        raise TypeError(f"{what}: mixed array namespaces ({', '.join(names)}); use one array library")
    if not namespaces:
        raise ValueError(f"{what}: expected at least one array")
    return next(iter(namespaces.values()))


def is_real_floating(xp, dtype) -> bool:
    return xp.isdtype(dtype, "real floating")


def state_dtype(xp, dtype):
    """Dtype of ``m`` and ``v`` for a parameter of ``dtype``: float32 below 32 bits, else ``dtype``."""
    return xp.float32 if xp.finfo(dtype).bits < 32 else dtype


def statistics_dtype(xp, dtypes) -> Any:
    """Dtype of player statistics: float64 when any state is float64, else float32."""
    return xp.float64 if any(xp.finfo(d).bits > 32 for d in dtypes) else xp.float32


def check_floating(xp, arrays: Sequence[Any], what: str) -> None:
    for k, array in enumerate(arrays):
        if not is_real_floating(xp, array.dtype):
            raise TypeError(f"{what}[{k}] has dtype {array.dtype}; NEAT needs real floating arrays")


def check_like(xp, params: Sequence[Any], grads: Sequence[Any]) -> None:
    """``grads`` must match ``params`` in count, shape and dtype (SPEC "One step", inputs)."""
    if len(grads) != len(params):
        raise ValueError(f"got {len(grads)} gradients for {len(params)} parameters")
    for k, (p, g) in enumerate(zip(params, grads)):
        if tuple(g.shape) != tuple(p.shape):
            raise ValueError(f"grads[{k}] has shape {tuple(g.shape)} but params[{k}] has shape {tuple(p.shape)}")
        if g.dtype != p.dtype:
            raise TypeError(f"grads[{k}] has dtype {g.dtype} but params[{k}] has dtype {p.dtype}")

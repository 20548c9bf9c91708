"""Array namespaces, dtypes and input checks shared by every entry point.

All checks read metadata only (types, shapes, dtypes): nothing here moves a
value from the device to the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from neat.plugins import plugin_manager


def namespace_of(arrays: Sequence[Any], what: str = "arrays"):
    """The one array-API namespace shared by ``arrays``; ``TypeError`` if none or several."""
    by_type: dict[type, Any] = {}
    for kind in set(map(type, arrays)):
        example = next(array for array in arrays if type(array) is kind)
        xp = _namespace_of_type(kind, example)
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


_NAMESPACE_OF_TYPE: dict[type, Any] = {}


def _namespace_of_type(kind: type, example):
    """The plug-ins' namespace for arrays of type ``kind``, asked once per type (JAX tracers and
    the example plug-in's device arrays depend on more than the type: those are not cached)."""
    xp = _NAMESPACE_OF_TYPE.get(kind)
    if xp is None:
        xp = plugin_manager().hook.neat_array_namespace(array=example)
        if xp is not None and kind.__module__.split(".")[0] in _CACHEABLE_MODULES:
            _NAMESPACE_OF_TYPE[kind] = xp
    return xp


#: Array types whose namespace depends on the type alone.
_CACHEABLE_MODULES = ("numpy", "torch", "cupy")


def is_real_floating(xp, dtype) -> bool:
    return xp.isdtype(dtype, "real floating")


def state_dtype(xp, dtype):
    """Dtype of ``m`` and ``v`` for a parameter of ``dtype``: float32 below 32 bits, else ``dtype``."""
    return xp.float32 if xp.finfo(dtype).bits < 32 else dtype


def statistics_dtype(xp, dtypes) -> Any:
    """Dtype of player statistics: float64 when any state is float64, else float32."""
    return xp.float64 if any(xp.finfo(d).bits > 32 for d in dtypes) else xp.float32


def check_floating(xp, arrays: Sequence[Any], what: str) -> None:
    """Every array has a real floating dtype (checked once per distinct dtype)."""
    for dtype in {array.dtype for array in arrays}:
        if not is_real_floating(xp, dtype):
            k = next(k for k, array in enumerate(arrays) if array.dtype == dtype)
            raise TypeError(f"{what}[{k}] has dtype {dtype}; NEAT needs real floating arrays")


def check_like(xp, params: Sequence[Any], grads: Sequence[Any], moments: Sequence[Any] | None = None) -> None:
    """``grads`` (and the state's ``moments``, if given) match ``params`` in count and shape, and
    ``grads`` in dtype (SPEC "One step", inputs)."""
    if len(grads) != len(params):
        raise ValueError(f"got {len(grads)} gradients for {len(params)} parameters")
    if moments is not None and len(moments) != len(params):
        raise ValueError(f"got {len(params)} parameters but the state was initialised for {len(moments)}")
    for k, (p, g, m) in enumerate(zip(params, grads, params if moments is None else moments)):
        if g.shape != p.shape or m.shape != p.shape or g.dtype != p.dtype:
            _explain_mismatch(k, p, g, m)


def _explain_mismatch(k: int, p, g, m) -> None:
    if tuple(g.shape) != tuple(p.shape):
        raise ValueError(f"grads[{k}] has shape {tuple(g.shape)} but params[{k}] has shape {tuple(p.shape)}")
    if tuple(m.shape) != tuple(p.shape):
        raise ValueError(f"params[{k}] has shape {tuple(p.shape)} but its state has shape {tuple(m.shape)}")
    if g.dtype != p.dtype:
        raise TypeError(f"grads[{k}] has dtype {g.dtype} but params[{k}] has dtype {p.dtype}")

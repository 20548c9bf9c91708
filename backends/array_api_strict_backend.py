"""array-api-strict backend: the strictest reading of the standard, to keep the core honest."""

from __future__ import annotations

import sys

from neat.hookspecs import hookimpl
from neat.plugins import BackendInfo


@hookimpl
def neat_array_namespace(array):
    strict = sys.modules.get("array_api_strict")
    if strict is not None and isinstance(array, strict._array_object.Array):
        return strict
    return None


def _from_numpy(array, dtype):
    import array_api_strict as xp

    return xp.asarray(array, dtype=getattr(xp, dtype))


def _to_numpy(array):
    import numpy as np

    return np.asarray(np.from_dlpack(array), dtype=np.float64)


@hookimpl
def neat_backend_info():
    return BackendInfo(
        name="array_api_strict",
        requires=("array_api_strict",),
        dtypes=("float64", "float32"),
        from_numpy=_from_numpy,
        to_numpy=_to_numpy,
    )

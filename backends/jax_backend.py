"""JAX backend: ``jax.Array`` (tracers included) uses ``jax.numpy``, which implements the array API."""

from __future__ import annotations

import sys

import numpy as np

from neat.hookspecs import hookimpl
from neat.plugins import BackendInfo


@hookimpl
def neat_array_namespace(array):
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(array, jax.Array):
        return jax.numpy
    return None


def _x64_enabled() -> bool:
    import jax

    return bool(jax.config.jax_enable_x64)


def _from_numpy(array, dtype_name: str):
    import jax.numpy as jnp

    if dtype_name == "float64" and not _x64_enabled():
        raise RuntimeError("float64 JAX arrays need x64 mode (JAX_ENABLE_X64=1)")
    return jnp.asarray(np.asarray(array, dtype=np.float64), dtype=dtype_name)


def _to_numpy(array):
    return np.asarray(array, dtype=np.float64)


@hookimpl
def neat_backend_info():
    """float64 is listed only in x64 mode (``JAX_ENABLE_X64=1``): without it JAX has no float64 arrays."""
    try:
        dtypes = ("float64", "float32", "bfloat16") if _x64_enabled() else ("float32", "bfloat16")
    except ImportError:  # jax missing: ``requires`` makes the suite skip this backend
        dtypes = ("float32", "bfloat16")
    return BackendInfo(name="jax", requires=("jax",), dtypes=dtypes, from_numpy=_from_numpy, to_numpy=_to_numpy)

"""JAX backend: ``jax.Array`` (tracers included) uses ``jax.numpy``, which implements the array API."""

from __future__ import annotations

import sys

from neat.hookspecs import hookimpl


@hookimpl
def neat_array_namespace(array):
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(array, jax.Array):
        return jax.numpy
    return None

"""NumPy backend: arrays of type ``numpy.ndarray`` use ``array_api_compat.numpy``."""

from __future__ import annotations

import numpy as np

from neat.hookspecs import hookimpl
from neat.plugins import BackendInfo


@hookimpl
def neat_array_namespace(array):
    if isinstance(array, (np.ndarray, np.generic)):
        import array_api_compat.numpy

        return array_api_compat.numpy
    return None


@hookimpl
def neat_backend_info():
    return BackendInfo(
        name="numpy",
        requires=("numpy",),
        dtypes=("float64", "float32", "float16"),
        from_numpy=lambda array, dtype: np.asarray(array, dtype=dtype),
        to_numpy=lambda array: np.asarray(array, dtype=np.float64),
    )

"""An out-of-tree NEAT backend plug-in, the worked example of the README.

It claims the arrays that array-api-strict places on its ``device1`` (think of
a vendor's accelerator), gives them a namespace of their own, registers step
kernels for that namespace, and describes itself to the conformance suite.
"""

from __future__ import annotations

import sys

from neat.hookspecs import hookimpl
from neat.kernel_selection import KernelSet
from neat.kernels import GenericKernels, Statistics, adam_direction
from neat.plugins import BackendInfo

DEVICE = "device1"


class _DeviceNamespace:
    """array-api-strict's functions under a namespace object of their own, so that
    ``neat_step_kernels`` can recognise this backend's arrays by ``xp is NAMESPACE``."""

    def __getattr__(self, name):
        import array_api_strict

        return getattr(array_api_strict, name)


NAMESPACE = _DeviceNamespace()


class VecdotKernels(GenericKernels):
    """Statistics pass with one ``vecdot`` per product instead of ``sum(a * b)`` (SPEC step 3);
    the update pass (SPEC steps 6, 8, 9) is the generic one."""

    name = "example_vecdot"

    def statistics(self, xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype):
        rows = []
        for k, (g, m, v) in enumerate(zip(grads, exp_avg, exp_avg_sq)):
            g = xp.reshape(xp.astype(g, stats_dtype), (-1,))
            u = adam_direction(
                xp, m, v, xp.astype(scalars.prev_scale[k], m.dtype), xp.astype(scalars.prev_shift[k], m.dtype)
            )
            u = xp.reshape(xp.astype(u, stats_dtype), (-1,))
            rows.append(xp.stack([xp.vecdot(g, g), xp.vecdot(g, u), xp.vecdot(u, u)]))
        return Statistics(xp.stack(rows), None)


KERNELS = VecdotKernels()


def _on_device(array) -> bool:
    strict = sys.modules.get("array_api_strict")  # never import a framework just to look at an array
    return (
        strict is not None
        and type(array).__module__.startswith("array_api_strict")
        and array.device == strict.Device(DEVICE)
    )


@hookimpl(tryfirst=True)  # ahead of the built-in array_api_strict backend, which would claim these too
def neat_array_namespace(array):
    return NAMESPACE if _on_device(array) else None


@hookimpl
def neat_step_kernels():
    return KernelSet(KERNELS.name, KERNELS, _unsupported, priority=10)


def _unsupported(xp, params):
    return None if xp is NAMESPACE else f"the {KERNELS.name} kernels run array-api-strict arrays on {DEVICE} only"


def _from_numpy(array, dtype):
    import array_api_strict

    return array_api_strict.asarray(
        array, dtype=getattr(array_api_strict, dtype), device=array_api_strict.Device(DEVICE)
    )


def _to_numpy(array):
    import array_api_strict
    import numpy as np

    return np.asarray(array.to_device(array_api_strict.Device("CPU_DEVICE")), dtype=np.float64)


@hookimpl
def neat_backend_info():
    return BackendInfo(
        name="example_strict_device1",
        requires=("array_api_strict",),
        dtypes=("float64", "float32"),
        from_numpy=_from_numpy,
        to_numpy=_to_numpy,
    )

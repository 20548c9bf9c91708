"""The plug-in manager and the records plug-ins hand back.

:func:`plugin_manager` registers the built-in plug-ins (:data:`BUILT_IN_PLUGINS`)
and then every third-party one from the entry-point group ``neat``, once, lazily.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

from neat import hookspecs

ENTRY_POINT_GROUP = "neat"

#: Built-in plug-ins by name (the names their entry points had): registered from the modules
#: themselves, so a source checkout on ``PYTHONPATH`` works without installed metadata.
BUILT_IN_PLUGINS = {
    "numpy": "neat.backends.numpy_backend",
    "array_api_strict": "neat.backends.array_api_strict_backend",
    "torch": "neat.backends.torch_backend",
    "jax": "neat.backends.jax_backend",
    "jax_ffi": "neat.backends.jax_ffi_backend",
    "cupy": "neat.backends.cupy_backend",
    "numba": "neat.backends.numba.kernels",
    "triton": "neat.backends.triton_backend",
    "torch_adapter": "neat.adapters.torch_adapter",
    "optax_adapter": "neat.adapters.optax_adapter",
    "keras_adapter": "neat.adapters.keras_adapter",
}


@functools.cache
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plug-in manager: the built-ins, then every ``neat`` entry point
    (an entry point named like a built-in is skipped: the built-in is already registered)."""
    manager = pluggy.PluginManager("neat")
    manager.add_hookspecs(hookspecs)
    for name, module in BUILT_IN_PLUGINS.items():
        manager.register(importlib.import_module(module), name=name)
    manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return manager


@dataclass(frozen=True)
class BackendInfo:
    """What the conformance suite needs to drive a backend.

    ``requires`` names the modules that must import for the backend to run;
    ``from_numpy(array, dtype_name)`` makes a backend array from a NumPy one
    (``dtype_name`` in ``dtypes``); ``to_numpy`` goes back (to float64).
    ``skip_reason`` returns why the backend cannot run here (no GPU…) or ``None``.
    """

    name: str
    requires: tuple[str, ...]
    dtypes: tuple[str, ...]
    from_numpy: Callable[[Any, str], Any]
    to_numpy: Callable[[Any], Any]
    skip_reason: Callable[[], str | None] = lambda: None


@dataclass(frozen=True)
class ParamLayout:
    """A framework object's parameters as NEAT sees them.

    ``tensors``: the parameter arrays in order; ``names``: one label each;
    ``players``: lists of tensor indices (or ``None``); ``graph``: a weight
    matrix, an edge list or ``None`` (chain); ``player_names``: a label per player.
    """

    tensors: Sequence[Any]
    names: Sequence[str]
    players: Sequence[Sequence[int]] | None = None
    graph: Any = None
    player_names: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class AdapterInfo:
    """What the conformance suite needs to drive an adapter.

    ``run(problem, dtype_name)`` trains the framework's optimizer on a golden
    problem (:class:`neat.conformance.golden.GoldenProblem`) and returns the
    parameters after every step as lists of float64 NumPy arrays.
    """

    name: str
    requires: tuple[str, ...]
    dtypes: tuple[str, ...]
    run: Callable[[Any, str], list]
    skip_reason: Callable[[], str | None] = lambda: None


def no_graph_names(graph, why: str) -> None:
    """For an adapter that builds its graph one way only: ``ValueError`` for a named graph request."""
    if graph is not None:
        raise ValueError(f"graph={graph!r} is not known here: {why}")


def param_layout(obj, graph: str | None = None) -> ParamLayout:
    """Ask the adapters for ``obj``'s :class:`ParamLayout` (``graph``: see the ``neat_param_layout``
    hook); raise ``TypeError`` if none knows it."""
    layout = plugin_manager().hook.neat_param_layout(obj=obj, graph=graph)
    if layout is None:
        raise TypeError(
            f"No NEAT adapter knows how to map an object of type {type(obj).__qualname__} "
            "to players; pass a list of arrays instead"
        )
    return layout


def namespace_if_instance(array, module: str, array_type: str, namespace: str):
    """The array namespace ``namespace`` (imported on first use) when ``array`` is a
    ``module.array_type`` of an already imported ``module``, else ``None``: a backend's
    ``neat_array_namespace`` that never imports its framework."""
    loaded = sys.modules.get(module)
    if loaded is None or not isinstance(array, getattr(loaded, array_type)):
        return None
    return importlib.import_module(namespace)

"""Find the backends, adapters and kernel sets registered with NEAT's plug-in manager.

Each plug-in's ``neat_backend_info`` / ``neat_adapter_info`` hook returns one
record (or a list of them). An adapter is one row of the conformance matrix; a
backend is one row per registered kernel set that can run its arrays
(:func:`backend_rows`), so a newly registered kernel set gets its rows by itself.
"""

from __future__ import annotations

import fnmatch
import importlib.util
from dataclasses import dataclass

import numpy as np

from neat import arrays
from neat.kernel_selection import KernelSet, registered
from neat.plugins import AdapterInfo, BackendInfo, plugin_manager


@dataclass(frozen=True)
class BrokenPlugin:
    """A plug-in whose info hook raised: its row fails the ``registration`` check with ``error``."""

    name: str
    error: str
    requires: tuple = ()
    dtypes: tuple = ()

    @staticmethod
    def skip_reason():
        return None


def _records(hook, kind) -> list:
    """Call every implementation of an info hook on its own, so that one broken plug-in
    becomes one failing row instead of stopping the suite."""
    manager, records = plugin_manager(), []
    for impl in hook.get_hookimpls():
        try:
            result = impl.function()
        except Exception as error:  # noqa: BLE001 - reported as that plug-in's failure
            name = manager.get_name(impl.plugin) or impl.plugin_name
            records.append(
                BrokenPlugin(name, f"{hook.name} of plug-in {name!r} raised {type(error).__name__}: {error}")
            )
            continue
        for record in result if isinstance(result, (list, tuple)) else [result]:
            if record is None:
                continue
            if not isinstance(record, kind):
                name = manager.get_name(impl.plugin) or impl.plugin_name
                record = BrokenPlugin(
                    name, f"{hook.name} of plug-in {name!r} returned {type(record).__qualname__}, not a {kind.__name__}"
                )
            records.append(record)
    names = [r.name for r in records]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"several plug-ins register a {kind.__name__} named {', '.join(duplicates)}")
    return sorted(records, key=lambda r: r.name)


def backends() -> list:
    """Every registered backend (a :class:`BackendInfo`, or a :class:`BrokenPlugin`), sorted by name."""
    return _records(plugin_manager().hook.neat_backend_info, BackendInfo)


def adapters() -> list:
    """Every registered adapter (an :class:`AdapterInfo`, or a :class:`BrokenPlugin`), sorted by name."""
    return _records(plugin_manager().hook.neat_adapter_info, AdapterInfo)


def select(records: list, patterns: list[str] | None, what: str) -> list:
    """The records whose name matches one of the shell-style ``patterns`` (all when ``None``).

    A pattern that matches nothing is an error naming what is registered."""
    if patterns is None:
        return records
    chosen = []
    for pattern in patterns:
        matched = [r for r in records if r.name == pattern or fnmatch.fnmatchcase(r.name, pattern)]
        if not matched:
            known = ", ".join(r.name for r in records) or "none"
            raise LookupError(f"no {what} named {pattern!r} is registered (registered: {known})")
        chosen += [r for r in matched if r not in chosen]
    return sorted(chosen, key=lambda r: r.name)


def unavailable_reason(record) -> str | None:
    """Why ``record`` cannot run here (a module it requires is missing, no accelerator…), or ``None``."""
    missing = [name for name in record.requires if importlib.util.find_spec(name) is None]
    if missing:
        return f"{', '.join(missing)} not installed"
    return record.skip_reason()


@dataclass(frozen=True)
class BackendRow:
    """One backend row of the matrix: the backend's arrays of ``dtypes`` stepped by the kernel set
    named ``kernel_set``. ``kernel_set`` is ``None`` when the backend could not be probed (a broken
    plug-in, a backend that cannot run here, or ``error``: probing its arrays raised)."""

    backend: BackendInfo | BrokenPlugin
    kernel_set: str | None
    dtypes: tuple
    error: str | None = None

    @property
    def name(self) -> str:
        return self.backend.name if self.kernel_set is None else f"{self.backend.name} [{self.kernel_set}]"


def kernel_set_reason(kernel_set: KernelSet, info: BackendInfo, dtype: str) -> str | None:
    """Why ``kernel_set`` cannot run ``info``'s arrays of ``dtype`` (from a two-element sample), or ``None``."""
    sample = [info.from_numpy(np.zeros(2), dtype)]
    return kernel_set.unsupported(arrays.namespace_of(sample, f"backend {info.name}"), sample)


def backend_rows(records: list, kernel_patterns: list[str] | None = None) -> list[BackendRow]:
    """A row per backend and registered kernel set that runs at least one of its dtypes (sets
    filtered by the shell-style ``kernel_patterns``); one row without a kernel set for a backend
    that is broken, cannot run here, or whose arrays cannot be probed."""
    sets = [
        s
        for s in registered().values()
        if kernel_patterns is None or any(fnmatch.fnmatchcase(s.name, p) for p in kernel_patterns)
    ]
    rows = []
    for record in records:
        if isinstance(record, BrokenPlugin) or unavailable_reason(record):
            rows.append(BackendRow(record, None, tuple(record.dtypes)))
            continue
        try:
            runs = {s.name: tuple(d for d in record.dtypes if kernel_set_reason(s, record, d) is None) for s in sets}
        except Exception as error:  # noqa: BLE001 - a backend whose arrays cannot be made fails its row
            rows.append(
                BackendRow(
                    record,
                    None,
                    tuple(record.dtypes),
                    f"probing backend {record.name}'s arrays raised {type(error).__name__}: {error}",
                )
            )
            continue
        rows += [BackendRow(record, name, dtypes) for name, dtypes in runs.items() if dtypes]
    return rows

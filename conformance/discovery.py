"""Find the backends and adapters registered through the ``neat`` entry points.

Each plug-in's ``neat_backend_info`` / ``neat_adapter_info`` hook returns one
record (or a list of them); every record becomes one row of the conformance matrix.
"""

from __future__ import annotations

import fnmatch
import importlib.util
from dataclasses import dataclass

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
            records.append(BrokenPlugin(name, f"{hook.name} of plug-in {name!r} raised "
                                              f"{type(error).__name__}: {error}"))
            continue
        for record in result if isinstance(result, (list, tuple)) else [result]:
            if record is None:
                continue
            if not isinstance(record, kind):
                name = manager.get_name(impl.plugin) or impl.plugin_name
                record = BrokenPlugin(name, f"{hook.name} of plug-in {name!r} returned "
                                            f"{type(record).__qualname__}, not a {kind.__name__}")
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


def select(records: list, patterns: "list[str] | None", what: str) -> list:
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


def unavailable_reason(record) -> "str | None":
    """Why ``record`` cannot run here (a module it requires is missing, no accelerator…), or ``None``."""
    missing = [name for name in record.requires if importlib.util.find_spec(name) is None]
    if missing:
        return f"{', '.join(missing)} not installed"
    return record.skip_reason()

"""The first use of the compiled kernels: the one place where NEAT changes numba's configuration
or numba's cache on disk.

Importing a module of this package changes neither. Every use of a compiled module goes
through :func:`compiled_modules`, which, once per process and before any compiled function of
the package is loaded, chooses numba's threading layer (:func:`_choose_threading_layer`) and
drops the cached compilations made from other sources (:func:`drop_stale_compilations`).
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

#: The modules whose compiled functions numba caches on disk, and the layout whose constants they
#: compile in: they inline one another's functions and constants into their compiled code.
COMPILED_SOURCES = ("unsafe.py", "layout.py", "loops.py", "openmp.py", "game.py", "jax_ffi_loops.py")
#: Beside numba's cache files: the digest of :data:`COMPILED_SOURCES` they were compiled from.
SOURCES_MARKER = "neat-compiled-sources.sha256"


class CompiledModules(NamedTuple):
    """The package's compiled modules, ready to run."""

    unsafe: ModuleType
    loops: ModuleType
    openmp: ModuleType
    game: ModuleType
    jax_ffi_loops: ModuleType


@functools.cache
def compiled_modules() -> CompiledModules:
    """The compiled modules, after choosing numba's threading layer and dropping stale cached
    compilations (once per process)."""
    _choose_threading_layer()
    drop_stale_compilations()
    from neat.backends.numba import game, jax_ffi_loops, loops, openmp, unsafe

    return CompiledModules(unsafe, loops, openmp, game, jax_ffi_loops)


def _choose_threading_layer() -> None:
    """numba's workqueue thread pool, unless the user chose a layer (``NUMBA_THREADING_LAYER``, or
    numba's ``config.THREADING_LAYER``); before numba's pool starts.

    numba's default OpenMP pool keeps its threads spinning after every call, which takes the
    cores from torch's own OpenMP pool (a fused AdamW step measured 3-10x slower right after a
    numba call on 2 cores). The workqueue pool sleeps instead."""
    import numba

    config: Any = numba.config
    if "NUMBA_THREADING_LAYER" not in os.environ and config.THREADING_LAYER == "default":
        config.THREADING_LAYER = "workqueue"


def drop_stale_compilations() -> None:
    """Delete numba's cached compilations of :data:`COMPILED_SOURCES` when those sources changed.

    numba checks a cached function against its own file only, so after a change to another of
    these files (an edit, or an upgrade that keeps this file's timestamp and size) it would load
    code compiled with the other file's old functions: a fused step built with another layout of
    its argument words computes wrong numbers. Runs (:func:`compiled_modules`) before any compiled
    function of these modules is loaded."""
    from numba.core.caching import FunctionCache

    from neat.backends.numba import loops

    folder = Path(__file__).resolve().parent
    digest = hashlib.sha256(b"".join((folder / name).read_bytes() for name in COMPILED_SOURCES)).hexdigest()
    cache = Path(FunctionCache(loops.block_table.py_func)._cache_path)
    marker = cache / SOURCES_MARKER
    if marker.is_file() and marker.read_text() == digest:
        return
    try:
        for name in COMPILED_SOURCES:
            for path in cache.glob(f"{Path(name).stem}.*.nb[ic]"):
                path.unlink(missing_ok=True)
        cache.mkdir(parents=True, exist_ok=True)
        marker.write_text(digest)
    except OSError:  # a cache numba cannot write to either: nothing of ours is cached there
        pass

"""The first run on a fresh machine: every compiled entry point from an empty numba cache.

A warm cache hides compilation bugs: a function compiled for one dtype in one process and
reused for the next (a first-class function value typed for float64, refused for float32)
failed only while numba compiled both in the same process, never once they were cached.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

DRIVER = Path(__file__).with_name("cold_cache_steps.py")
#: NEAT's modules whose functions numba compiles and caches on disk.
COMPILED_MODULES = ("unsafe", "loops", "game", "openmp", "jax_ffi_loops")


def _caches(decorator, module) -> bool:
    """Whether a decorator is a numba call with ``cache=True`` (given, or in a ``**options`` dict)."""
    if not isinstance(decorator, ast.Call):
        return False
    for keyword in decorator.keywords:
        if keyword.arg == "cache":
            return ast.literal_eval(keyword.value) is True
        if keyword.arg is None and isinstance(keyword.value, ast.Name):
            return getattr(module, keyword.value.id).get("cache") is True
    return False


def cached_entry_points() -> set[str]:
    """``module.qualname`` of every function NEAT compiles with ``cache=True``, read from the sources
    (a function defined inside a factory as numba names it: ``factory.locals.function``)."""
    names = set()
    for name in COMPILED_MODULES:
        module = importlib.import_module(f"neat.backends.numba.{name}")
        for outer in ast.parse(Path(module.__file__).read_text()).body:
            if not isinstance(outer, ast.FunctionDef):
                continue
            if any(_caches(d, module) for d in outer.decorator_list):
                names.add(f"{name}.{outer.name}")
            for inner in ast.walk(outer):
                if inner is not outer and isinstance(inner, ast.FunctionDef):
                    if any(_caches(d, module) for d in inner.decorator_list):
                        names.add(f"{name}.{outer.name}.locals.{inner.name}")
    return names


def test_every_compiled_entry_point_runs_from_a_cold_cache(tmp_path):
    """One process, an empty ``NUMBA_CACHE_DIR``: float64, float32 and the 16-bit floats through
    the numba passes, the fused step on numba's and torch's pools and the JAX FFI handlers, at a
    serial and a parallel size, each against the float64 reference (``cold_cache_steps.py``);
    then every function NEAT compiles with ``cache=True`` has been compiled (it is in the cache)."""
    for framework in ("numba", "torch", "jax", "optax"):
        pytest.importorskip(framework, reason=f"{framework} is an optional framework")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    env.pop("XLA_FLAGS", None)  # the suite's four host devices: the FFI kernels run on a single device only
    run = subprocess.run([sys.executable, str(DRIVER)], env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    cases = [line.split()[1:4] for line in run.stdout.splitlines() if line.startswith("ok ")]
    assert len(cases) == 32, run.stdout  # 5 paths × their dtypes (2 to 4) × 2 sizes
    cached = {path.name.rsplit("-", 1)[0] for path in tmp_path.rglob("*.nbi")}
    missing = cached_entry_points() - cached
    assert not missing, f"not driven from the cold cache: {sorted(missing)}"


def test_the_entry_point_list_reads_every_cached_decorator():
    """The source scan finds the module-level loops and the factories' compiled closures."""
    pytest.importorskip("numba", reason="numba is an optional dependency (the cpu extra)")
    found = cached_entry_points()
    assert {"loops.statistics", "loops.serial_statistics", "game.play"} <= found
    assert "jax_ffi_loops._statistics_handler.locals.handler" in found
    assert "openmp._update_worker.locals.worker" in found
    assert "unsafe.view" not in found  # compiled, but not cached (inlined where it is used)

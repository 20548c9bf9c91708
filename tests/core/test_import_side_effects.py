"""Importing NEAT changes nothing: no file of numba's cache or of the package sources, no
environment variable, not numba's threading layer. The first use of the compiled kernels
(:mod:`neat.backends.numba.first_use`) is where numba is configured and stale cached
compilations are dropped."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

numba = pytest.importorskip("numba", reason="the numba kernels need numba (optional: pip install 'neat-nash[cpu]')")
pytest.importorskip("torch", reason="torch is an optional framework")

import neat  # noqa: E402
import neat.adapters  # noqa: E402
import neat.backends  # noqa: E402
import neat.conformance  # noqa: E402
from neat.backends.numba import first_use, loops  # noqa: E402

SOURCE_FOLDERS = [Path(package.__file__).parent for package in (neat, neat.backends, neat.adapters, neat.conformance)]

IMPORTS = """
import importlib, os, pkgutil
import array_api_compat.numpy, numba, numpy as np, torch  # the frameworks' own imports are not NEAT's
import torch._dynamo  # loaded by neat.torch's torch.compiler.disable; it sets TORCHINDUCTOR_CACHE_DIR itself
environ, layer = dict(os.environ), numba.config.THREADING_LAYER
import neat, neat.torch, neat.backends.numba
from neat.kernel_selection import select_kernels
for module in pkgutil.iter_modules(neat.backends.numba.__path__):
    importlib.import_module(f"neat.backends.numba.{module.name}")
assert select_kernels(array_api_compat.numpy, [np.zeros(3, np.float32)], None).name == "numba"
changed = sorted(k for k in environ.keys() | os.environ.keys() if environ.get(k) != os.environ.get(k))
assert not changed, f"environment variables changed: {changed}"
assert numba.config.THREADING_LAYER == layer, f"threading layer {layer!r} became {numba.config.THREADING_LAYER!r}"
"""


def _tree(folder: Path) -> dict:
    """Every file (by its digest) and folder (``None``) under ``folder``."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        for path in folder.rglob("*")
    }


def _plant(cache_dir: Path, monkeypatch) -> tuple[list[Path], Path]:
    """Cached compilations of NEAT's compiled modules that the stale-cache guard drops (their
    sources' record says they came from other sources), and one of another module's."""
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(cache_dir))
    from numba.core.caching import FunctionCache

    cache = Path(FunctionCache(loops.block_table.py_func)._cache_path)
    ours = [cache / "loops.block_table-60.py311.nbi", cache / "game.play-95.py311.1.nbc"]
    other = cache / "someone_else.f-1.py311.nbi"
    for path in (*ours, other):
        path.write_bytes(b"compiled")
    (cache / first_use.SOURCES_MARKER).write_text("the digest of other sources")
    (cache_dir / "notes.txt").write_text("not numba's")
    return ours, other


def _run(code: str, cache_dir: Path, **env) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    environ.update(NUMBA_CACHE_DIR=str(cache_dir), PYTHONDONTWRITEBYTECODE="1", **env)
    child = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    return child.stdout.strip()


def test_importing_neat_and_the_numba_modules_changes_no_file_environment_or_numba_setting(tmp_path, monkeypatch):
    """A fresh process imports ``neat``, ``neat.torch`` and every module of ``neat.backends.numba``
    and selects the numba kernels: the environment and numba's threading layer are as they were,
    and no file in a (planted) numba cache or in NEAT's sources was created, changed or deleted."""
    _plant(tmp_path, monkeypatch)
    before = _tree(tmp_path), [_tree(folder) for folder in SOURCE_FOLDERS]
    _run(IMPORTS, tmp_path)
    assert _tree(tmp_path) == before[0], "an import changed numba's cache"
    for folder, files in zip(SOURCE_FOLDERS, before[1]):
        assert _tree(folder) == files, f"an import changed {folder}"


@pytest.mark.parametrize(
    "chosen,env,expected",
    [
        ("", {}, "workqueue"),
        ("", {"NUMBA_THREADING_LAYER": "omp"}, "omp"),
        ("numba.config.THREADING_LAYER = 'tbb'", {}, "tbb"),
    ],
)
def test_the_first_use_chooses_the_threading_layer_and_drops_stale_compilations(
    tmp_path, monkeypatch, chosen, env, expected
):
    """The first use (:func:`~neat.backends.numba.first_use.compiled_modules`) takes numba's
    workqueue pool unless the user chose a layer (by the environment or numba's config), and drops
    the cached compilations of NEAT's modules made from other sources (none of another module's)."""
    ours, other = _plant(tmp_path, monkeypatch)
    code = (
        f"import numba\n{chosen}\nfrom neat.backends.numba.first_use import compiled_modules\n"
        "compiled_modules()\nprint(numba.config.THREADING_LAYER)\n"
    )
    assert _run(code, tmp_path, **env) == expected
    assert not any(path.exists() for path in ours) and other.exists()

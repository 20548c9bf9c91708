"""Built-in plug-ins load through the ``neat`` entry points like a third party's; the
core runs unchanged on every array-API namespace; ``import neat`` loads no framework."""

import subprocess
import sys

import numpy as np
import pytest

import neat
from neat.plugins import plugin_manager

from .problems import max_relative_error, random_problem, run_core


def test_builtin_backends_are_registered_from_entry_points():
    manager = plugin_manager()
    by_name = {name: dist for name, dist in ((manager.get_name(p), d) for p, d in manager.list_plugin_distinfo())}
    for name in ("numpy", "array_api_strict", "torch", "jax"):
        assert name in by_name, f"backend {name!r} not loaded from an entry point"
        assert by_name[name].project_name == "neat-nash"


def test_backend_infos_are_collected():
    from neat.conformance import discovery

    names = {info.name for info in discovery.backends()}
    assert {"numpy", "array_api_strict", "torch", "torch-cuda", "jax", "cupy"} <= names


def test_import_neat_imports_no_framework():
    code = ("import sys, neat, neat.functional, neat.plugins; neat.plugins.plugin_manager(); "
            "print(sorted(m for m in ('torch', 'jax', 'keras', 'cupy', 'tensorflow', 'optax', 'flax') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_array_api_strict_matches_numpy():
    strict = pytest.importorskip("array_api_strict", reason="array-api-strict not installed")
    params, players, weights, hp, grads = random_problem(5, num_steps=20)
    opt = neat.ng_adam(**hp)
    expected, _ = run_core(opt, params, grads, players, weights)

    def to_strict(arrays):
        return [strict.asarray(a, dtype=strict.float64) for a in arrays]

    ours, state = run_core(opt, to_strict(params), [to_strict(g) for g in grads], players, weights)
    assert max_relative_error([np.from_dlpack(a) for a in ours], expected) <= 1e-12
    assert isinstance(opt.diagnostics(state)["step_scale"], strict._array_object.Array)

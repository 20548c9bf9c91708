"""Built-in plug-ins are registered by NEAT itself (no installed metadata needed); the core
runs unchanged on every array-API namespace; ``import neat`` loads no framework; a source
checkout on ``PYTHONPATH`` runs with nothing installed but NumPy, pluggy and array-api-compat."""

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import array_api_compat
import numpy as np
import pluggy
import pytest

import neat
from neat.plugins import BUILT_IN_PLUGINS, plugin_manager

from .problems import max_relative_error, random_problem, run_core

CHECKOUT = Path(__file__).resolve().parents[2]


def test_builtin_plugins_are_registered_under_their_names():
    manager = plugin_manager()
    for name, module in BUILT_IN_PLUGINS.items():
        assert manager.get_plugin(name) is importlib.import_module(module), f"built-in plug-in {name!r}"
    assert {"numpy", "array_api_strict", "torch", "jax", "cupy"} <= set(BUILT_IN_PLUGINS)


def test_backend_infos_are_collected():
    from neat.conformance import discovery

    names = {info.name for info in discovery.backends()}
    assert {"numpy", "array_api_strict", "torch", "torch-cuda", "jax", "cupy"} <= names


def test_import_neat_imports_no_framework():
    code = (
        "import sys, neat, neat.functional, neat.plugins; neat.plugins.plugin_manager(); "
        "print(sorted(m for m in ('torch', 'jax', 'keras', 'cupy', 'tensorflow', 'optax', 'flax') "
        "if m in sys.modules))"
    )
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


#: Run from a copy of the checkout with ``python -S`` (no site-packages: neither the editable install
#: nor any framework), finding only the copy and the three dependencies through PYTHONPATH.
CHECKOUT_SCRIPT = """
import sys, numpy as np
import neat
from neat import functional
from neat.topology import Topology
assert neat.__file__.startswith(sys.argv[1]), neat.__file__
from neat.backends import numpy_backend
assert numpy_backend.__file__.startswith(sys.argv[1]), numpy_backend.__file__
frameworks = [m for m in ("torch", "jax", "keras", "cupy", "numba", "triton") if m in sys.modules]
assert not frameworks, frameworks
opt = neat.ng_adam(lr=0.1)
params = [np.ones(3), np.ones((2, 2))]
topology = Topology.build(2, None, None, mu=1.0)
state = functional.init_state(params, topology)
params, state = functional.step(params, [np.full(3, 0.5), None], state, opt.config, topology=topology)
assert not np.array_equal(params[0], np.ones(3)) and np.array_equal(params[1], np.ones((2, 2)))
assert "generic" in neat.kernel_selection.registered()
print("stepped", state.game.tensor_count.tolist())
"""


def test_a_source_checkout_on_pythonpath_needs_only_the_three_dependencies(tmp_path):
    checkout = tmp_path / "checkout"
    for folder in ("neat", "backends", "adapters", "conformance"):
        shutil.copytree(CHECKOUT / folder, checkout / folder, ignore=shutil.ignore_patterns("__pycache__"))
    dependencies = tmp_path / "dependencies"
    dependencies.mkdir()
    for module in (np, pluggy, array_api_compat):
        package = Path(module.__file__).parent
        for folder in (package, package.with_name(package.name + ".libs")):  # numpy.libs: NumPy's wheels
            if folder.exists():
                (dependencies / folder.name).symlink_to(folder)
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join([str(checkout), str(dependencies)])}
    child = subprocess.run(
        [sys.executable, "-S", "-c", CHECKOUT_SCRIPT, str(checkout)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    assert child.stdout.strip() == "stepped [1, 0]", child.stdout

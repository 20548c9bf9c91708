"""Third-party registration end to end, and the conformance suite catching broken math.

* ``tests/example_plugin`` is a real distribution (CI runs ``pip install ./tests/example_plugin``):
  NEAT must load it from its ``neat`` entry point and the conformance suite must run it.
* A backend whose kernels drop the NGE term, registered through an entry point of a
  throw-away distribution, must fail the suite with the check's name and the deviation.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from neat.conformance import discovery
from neat.conformance.plugin import child_command
from neat.conformance.tolerances import tolerance
from neat.plugins import plugin_manager

EXAMPLE = "example_strict_device1"
INSTALL_HINT = "install it first: pip install ./tests/example_plugin"


def _conformance(tmp_path, *options, pythonpath=None):
    """Run the conformance suite in a child pytest from ``tmp_path``; return (process, matrix)."""
    matrix_path = tmp_path / "matrix.json"
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    child = subprocess.run(
        child_command(matrix_path, *options),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    matrix = json.loads(matrix_path.read_text()) if matrix_path.exists() else None
    return child, matrix


def test_example_plugin_is_an_installed_distribution_loaded_from_its_entry_point():
    try:
        distribution = metadata.distribution("neat-example-plugin")
    except metadata.PackageNotFoundError:
        pytest.fail(f"the example plug-in distribution is not installed; {INSTALL_HINT}")
    entry_points = [ep for ep in distribution.entry_points if ep.group == "neat"]
    assert [(ep.name, ep.value) for ep in entry_points] == [(EXAMPLE, "neat_example_plugin")]
    module = plugin_manager().get_plugin(EXAMPLE)
    assert module is not None, "NEAT's plug-in manager did not register the example entry point"
    assert Path(module.__file__).resolve().parent != Path(__file__).resolve().parent / "example_plugin", (
        "the example plug-in was imported from the source tree, not from the installed distribution"
    )
    assert EXAMPLE in [backend.name for backend in discovery.backends()]


def test_conformance_suite_runs_and_passes_the_example_plugin(tmp_path):
    """One row per kernel set that runs the example's arrays: its own and the generic one, and no other."""
    if EXAMPLE not in [backend.name for backend in discovery.backends()]:
        pytest.fail(f"backend {EXAMPLE} is not registered; {INSTALL_HINT}")
    child, matrix = _conformance(tmp_path, f"--neat-backend={EXAMPLE}")
    assert child.returncode == 0, child.stdout[-4000:] + child.stderr[-2000:]
    assert sorted(matrix["rows"]) == [f"backend {EXAMPLE} [example_vecdot]", f"backend {EXAMPLE} [generic]"]
    for row in matrix["rows"].values():
        assert {
            "registration",
            "golden/float64",
            "golden/float32",
            "diagnostics",
            "adamw",
            "skips",
            "state",
            "bad-input",
            "inactive",
        } <= set(row)
        assert {cell["status"] for cell in row.values()} == {"pass"}, row


BROKEN_BACKEND = '''
"""A backend whose kernel set drops the NGE term (SPEC step 6): g_hat = g."""
import sys
from neat.hookspecs import hookimpl
from neat.kernel_selection import KernelSet
from neat.kernels import GenericKernels
from neat.plugins import BackendInfo

class _Namespace:
    def __getattr__(self, name):
        import array_api_strict
        return getattr(array_api_strict, name)

NAMESPACE = _Namespace()

class NoNGE(GenericKernels):
    name = "no_nge"

    def update(self, xp, params, grads, exp_avg, exp_avg_sq, statistics, scalars, *rest, **options):
        scalars = scalars._replace(nge=scalars.nge * 0.0)
        return super().update(xp, params, grads, exp_avg, exp_avg_sq, statistics, scalars, *rest, **options)

@hookimpl(tryfirst=True)
def neat_array_namespace(array):
    strict = sys.modules.get("array_api_strict")
    if strict is not None and type(array).__module__.startswith("array_api_strict") \\
            and array.device == strict.Device("device2"):
        return NAMESPACE
    return None

@hookimpl
def neat_step_kernels():
    return KernelSet("no_nge", NoNGE(), lambda xp, params: None if xp is NAMESPACE else "device2 only")

def _from_numpy(array, dtype):
    import array_api_strict as xp
    return xp.asarray(array, dtype=getattr(xp, dtype), device=xp.Device("device2"))

def _to_numpy(array):
    import array_api_strict as xp
    import numpy as np
    return np.asarray(array.to_device(xp.Device("CPU_DEVICE")), dtype=np.float64)

@hookimpl
def neat_backend_info():
    return BackendInfo(name="broken_nge", requires=("array_api_strict",), dtypes=("float64",),
                       from_numpy=_from_numpy, to_numpy=_to_numpy)
'''


def _install_throwaway_distribution(root: Path) -> Path:
    """A module and its ``.dist-info`` with an entry point in group ``neat``, importable from ``root``."""
    root.mkdir()
    (root / "neat_broken_backend.py").write_text(textwrap.dedent(BROKEN_BACKEND))
    info = root / "neat_broken_backend-0.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: neat-broken-backend\nVersion: 0.0.0\n")
    (info / "entry_points.txt").write_text("[neat]\nbroken_nge = neat_broken_backend\n")
    return root


def test_conformance_suite_fails_a_backend_without_nge_and_says_by_how_much(tmp_path):
    site = _install_throwaway_distribution(tmp_path / "site")
    (tmp_path / "run").mkdir()
    child, matrix = _conformance(tmp_path / "run", "--neat-backend=broken_nge", pythonpath=site)
    output = child.stdout + child.stderr
    assert child.returncode == 1, output[-4000:]
    assert matrix["rows"]["backend broken_nge [generic]"]["golden/float64"]["status"] == "pass"
    row = matrix["rows"]["backend broken_nge [no_nge]"]
    assert row["golden/float64"]["status"] == "FAIL"
    assert row["diagnostics"]["status"] == "FAIL"
    # NGE is off when gamma = 0 and never acts on a skipped step: those checks still pass.
    assert row["adamw"]["status"] == "pass"
    assert row["bad-input"]["status"] in ("pass", "pass*")  # pass*: the dtype-mismatch case needs 2 dtypes
    message = next(r for r in row["golden/float64"]["reasons"] if "golden problem 'chain3'" in r)
    assert "backend broken_nge [no_nge] × golden/float64 [float64, golden problem 'chain3']" in message
    deviation = float(message.split("deviation ")[1].split(" ")[0])
    assert deviation > 1e3 * tolerance("float64", 50).params
    assert "backend broken_nge [no_nge] × golden/float64" in output and "> tolerance" in output

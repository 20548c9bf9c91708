"""The suite's own machinery: deviations, the matrix, discovery of broken plug-ins."""

from __future__ import annotations

import numpy as np
import pytest

from neat.conformance import compare, discovery
from neat.conformance.matrix import FAILED, PASSED, SKIPPED, Matrix
from neat.hookspecs import hookimpl
from neat.kernel_selection import KernelSet, registered
from neat.kernels import GENERIC
from neat.plugins import BackendInfo, plugin_manager


def test_non_finite_parameters_are_an_infinite_deviation():
    expected = [[np.ones(3)], [np.ones(3)]]
    actual = [[np.ones(3)], [np.array([1.0, np.nan, 1.0])]]
    deviation = compare.params_deviation(actual, expected)
    assert deviation.value == float("inf") and deviation.step == 1 and deviation.where == "tensor 0"
    with pytest.raises(AssertionError, match=r"row × check: deviation inf > tolerance 1e-12 .* at step 2, tensor 0"):
        deviation.check(1e-12, "row × check")


def test_deviation_is_relative_to_the_tensor_scale():
    expected = [[np.array([10.0, -20.0]), np.array([0.1])]]
    actual = [[np.array([10.0, -20.2]), np.array([0.1])]]
    assert compare.params_deviation(actual, expected).value == pytest.approx(0.01)


def test_skipped_step_count_must_be_equal():
    expected = {key: np.zeros((1, 2)) for key in ("alignment", "kappa")}
    expected |= {"step_scale": np.ones((1, 2)), "mean_alignment": np.zeros(1), "skipped_steps": np.array([1])}
    actual = [
        {
            "alignment": np.zeros(2),
            "kappa": np.zeros(2),
            "step_scale": np.ones(2),
            "mean_alignment": np.float64(0.0),
            "skipped_steps": np.float64(0.0),
        }
    ]
    deviation = compare.diagnostics_deviation(actual, expected)
    assert deviation.value == float("inf") and deviation.where.startswith("skipped_steps")


def test_matrix_cells_aggregate_outcomes():
    matrix = Matrix()
    matrix.add("backend a", "golden/float64", PASSED)
    matrix.add("backend a", "golden/float64", FAILED, "deviation 2 > tolerance 1e-12")
    matrix.add("backend a", "skips", PASSED)
    matrix.add("backend a", "skips", SKIPPED, "needs two dtypes")
    matrix.add("backend b", "skips", SKIPPED, "cupy not installed")
    assert matrix.status("backend a", "golden/float64") == ("FAIL", ["deviation 2 > tolerance 1e-12"])
    assert matrix.status("backend a", "skips") == ("pass*", ["needs two dtypes"])
    assert matrix.status("backend b", "skips") == ("skip", ["cupy not installed"])
    assert matrix.status("backend b", "golden/float64") is None
    assert matrix.failed
    text = matrix.render()
    assert "backend b: every check skipped: cupy not installed" in text
    assert "backend a × golden/float64: FAIL: deviation 2 > tolerance 1e-12" in text
    copy = Matrix()
    copy.merge(matrix.to_dict(), lambda row: row + " (child)")
    assert copy.status("backend a (child)", "skips") == ("pass*", ["needs two dtypes"])
    assert copy.status("backend a (child)", "golden/float64")[0] == "FAIL"


def test_selection_by_exact_name_or_pattern_and_unknown_names():
    records = [BackendInfo("keras.NGAdam[jax]", (), ("float32",), None, None), BackendInfo("numpy", (), (), None, None)]
    assert [r.name for r in discovery.select(records, ["keras.NGAdam[jax]"], "adapter")] == ["keras.NGAdam[jax]"]
    assert [r.name for r in discovery.select(records, ["k*", "numpy"], "adapter")] == ["keras.NGAdam[jax]", "numpy"]
    with pytest.raises(LookupError, match=r"no backend named 'nope' is registered \(registered: keras"):
        discovery.select(records, ["nope"], "backend")


class _RaisingPlugin:
    @hookimpl
    def neat_backend_info(self):
        raise ImportError("no module named vendorlib")


def test_a_plugin_whose_info_hook_raises_becomes_a_broken_row():
    manager = plugin_manager()
    manager.register(_RaisingPlugin(), name="raising_test_plugin")
    try:
        broken = [r for r in discovery.backends() if isinstance(r, discovery.BrokenPlugin)]
    finally:
        manager.unregister(name="raising_test_plugin")
    assert [b.name for b in broken] == ["raising_test_plugin"]
    assert "raised ImportError: no module named vendorlib" in broken[0].error


class _KernelPlugin:
    """Registers a kernel set that runs NumPy arrays of float64 and float32 only."""

    @hookimpl
    def neat_step_kernels(self):
        def unsupported(xp, params):
            if not isinstance(params[0], np.ndarray) or params[0].dtype == np.float16:
                return "NumPy float64 / float32 only"
            return None

        return KernelSet("selftest", GENERIC, unsupported, priority=-10)


def test_a_registered_kernel_set_gets_its_rows_by_itself():
    manager = plugin_manager()
    manager.register(_KernelPlugin(), name="kernel_set_test_plugin")
    registered.cache_clear()
    try:
        rows = {row.name: row for row in discovery.backend_rows(discovery.backends())}
    finally:
        manager.unregister(name="kernel_set_test_plugin")
        registered.cache_clear()
    assert rows["numpy [selftest]"].dtypes == ("float64", "float32")
    assert rows["numpy [generic]"].dtypes == ("float64", "float32", "float16")
    assert not any(name.startswith("array_api_strict [selftest") for name in rows)
    assert "numpy [selftest]" not in {row.name for row in discovery.backend_rows(discovery.backends())}

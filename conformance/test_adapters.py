"""Conformance of every registered adapter: the framework's optimizer on the golden problems.

An adapter's ``run(problem, dtype)`` trains the framework's own parameters with
its NEAT optimizer; the parameters after every step must match the reference.
Where ``problem.grads[s][k] is None`` the tensor has no gradient at that step
(a frozen or unused parameter, SPEC v2).
"""

from __future__ import annotations

import numpy as np
import pytest

from neat.conformance import compare, discovery, runner
from neat.conformance.adamw import adamw_trajectory
from neat.conformance.tolerances import tolerance


def _where(adapter, check, dtype, problem) -> str:
    return f"adapter {adapter.name} × {check} [{dtype}, golden problem '{problem}']"


@pytest.mark.neat_check("registration", registration=True)
def test_adapter_registration(neat_adapter):
    """The plug-in's ``neat_adapter_info`` returned a usable record (a hook that raised fails here)."""
    assert not isinstance(neat_adapter, discovery.BrokenPlugin), neat_adapter.error
    assert neat_adapter.name and isinstance(neat_adapter.name, str), "an adapter needs a name"
    assert neat_adapter.dtypes, f"adapter {neat_adapter.name} declares no dtype"
    assert callable(neat_adapter.run), f"adapter {neat_adapter.name}: run is not callable"


def _check_params(adapter, dtype, problem_name, check):
    problem = runner.problems()[problem_name]
    steps = runner.adapter_run(adapter, problem_name, dtype)
    compare.params_deviation(steps, problem.expected_params).check(
        tolerance(dtype, problem.num_steps).params, f"{_where(adapter, check, dtype, problem_name)}: parameters"
    )
    return problem, steps


@pytest.mark.neat_check("golden/{neat_dtype}")
def test_adapter_matches_reference(neat_adapter, neat_dtype, golden_problem):
    """Parameters after every step are within the dtype's tolerance of the float64 reference."""
    _check_params(neat_adapter, neat_dtype, golden_problem, f"golden/{neat_dtype}")


@pytest.mark.neat_check("inactive")
def test_adapter_inactive_tensors(neat_adapter, neat_dtype, inactive_problem):
    """Tensors without a gradient on some steps: the parameters follow the reference (the
    sub-game of the active players), and an inactive tensor is left exactly as it was."""
    problem, steps = _check_params(neat_adapter, neat_dtype, inactive_problem, "inactive")
    for s, k in zip(*np.nonzero(~problem.active)):
        if s:
            assert np.array_equal(steps[s][k], steps[s - 1][k]), (
                f"{_where(neat_adapter, 'inactive', neat_dtype, inactive_problem)}: at step {s + 1} tensor {k} "
                f"has no gradient but changed"
            )


@pytest.mark.neat_check("adamw")
def test_adapter_reduces_to_adamw(neat_adapter, neat_dtype):
    """With ``γ = ζ = 0`` the adapter's optimizer is AdamW (an independent formula)."""
    problem = runner.problems()["adamw"]
    formula = adamw_trajectory(problem.params, problem.grads, **problem.hyperparameters)
    compare.params_deviation(runner.adapter_run(neat_adapter, "adamw", neat_dtype), formula).check(
        tolerance(neat_dtype, problem.num_steps).params,
        f"{_where(neat_adapter, 'adamw', neat_dtype, 'adamw')}: parameters vs the AdamW formula",
    )


@pytest.mark.neat_check("skips")
def test_adapter_skips_non_finite_steps(neat_adapter, neat_dtype, skipping_problem):
    """A step with a NaN or inf gradient, or whose ``G_i`` overflows, leaves every parameter
    exactly as it was. (A skipped first step is compared with the initial values by the golden check.)"""
    problem = runner.problems()[skipping_problem]
    steps = runner.adapter_run(neat_adapter, skipping_problem, neat_dtype)
    later = [s for s in problem.skipped_steps if s > 0]
    assert later, f"the golden problem '{skipping_problem}' has no skipped step after the first"
    for s in later:
        for k, (new, old) in enumerate(zip(steps[s], steps[s - 1])):
            assert np.array_equal(new, old), (
                f"{_where(neat_adapter, 'skips', neat_dtype, skipping_problem)}: step {s + 1} is skipped "
                f"but tensor {k} changed by {np.max(np.abs(new - old)):.3g}"
            )

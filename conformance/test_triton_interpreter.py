"""Conformance row of the triton kernel set on torch CPU tensors, under Triton's interpreter.

The suite's backend rows include ``torch [triton]`` only where the triton kernels can run
torch's arrays: on CUDA, or on CPU when ``TRITON_INTERPRET=1`` was set before collection.
This row runs them through the interpreter in every session (``TRITON_INTERPRET=1`` is set
for its tests only): every golden problem, float32 and float64, over its first
:data:`STEPS` steps, against the float64 reference to the suite's tolerances for that many
steps and against the generic kernels on the same arrays. The interpreter takes about
0.1 s per step, hence the shorter runs; they still cover skipped steps (``skips`` 0, 7, 8;
``overflow`` 3, 17, 18; ``inactive`` 20), inactive tensors and ``ε = 0``.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

from neat.conformance import compare, discovery, runner
from neat.conformance.tolerances import tolerance

pytest.importorskip("torch", reason="torch is not installed (optional framework)")
pytest.importorskip("triton", reason="triton is not installed (optional: pip install 'neat-nash[triton]')")

STEPS = 24
ROW = "backend torch [triton, interpreted]"
DTYPES = ("float32", "float64")
PROBLEMS = sorted(runner.problems())


@pytest.fixture(autouse=True)
def interpreter(monkeypatch):
    """``kernels="triton"`` takes torch CPU tensors only under ``TRITON_INTERPRET=1``."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")


def torch_backend():
    return next(b for b in discovery.backends() if b.name == "torch")


def first_steps(problem):
    """The golden problem cut to its first :data:`STEPS` steps, expected outputs included."""
    return dataclasses.replace(
        problem,
        grads=problem.grads[:STEPS],
        expected_params=problem.expected_params[:STEPS],
        expected_diagnostics={key: values[:STEPS] for key, values in problem.expected_diagnostics.items()},
        expected_counts=problem.expected_counts[:STEPS],
        expected_tensor_counts=problem.expected_tensor_counts[:STEPS],
    )


@functools.cache
def run(problem_name: str, dtype: str, kernel_set: str) -> runner.BackendRun:
    """Torch CPU tensors stepped by ``kernel_set`` over the problem's first steps."""
    info = torch_backend()
    stepper = runner.Stepper(info, dtype, kernel_set, first_steps(runner.problems()[problem_name]))
    params, state = stepper.init()
    result = runner.BackendRun([], [], [], [])
    with runner.quiet_non_finite():
        for grads in stepper.problem.grads:
            params, state = stepper.step(params, stepper.arrays(grads), state)
            result.params.append([info.to_numpy(p) for p in params])
            result.diagnostics.append(runner.host_diagnostics(info, state))
            result.tensor_counts.append([int(c) for c in info.to_numpy(state.game.tensor_count)])
    return result


def where(check: str, dtype: str, problem_name: str) -> str:
    return f"{ROW} × {check} [{dtype}, golden problem '{problem_name}', first {STEPS} steps]"


@pytest.mark.neat_check("golden/{neat_dtype}", row=ROW)
@pytest.mark.parametrize("problem_name", PROBLEMS)
@pytest.mark.parametrize("neat_dtype", DTYPES)
def test_parameters_match_reference(neat_dtype, problem_name):
    problem = first_steps(runner.problems()[problem_name])
    compare.params_deviation(run(problem_name, neat_dtype, "triton").params, problem.expected_params).check(
        tolerance(neat_dtype, STEPS).params, f"{where('golden', neat_dtype, problem_name)}: parameters"
    )


@pytest.mark.neat_check("diagnostics", row=ROW)
@pytest.mark.parametrize("problem_name", PROBLEMS)
@pytest.mark.parametrize("neat_dtype", DTYPES)
def test_diagnostics_match_reference(neat_dtype, problem_name):
    problem = first_steps(runner.problems()[problem_name])
    triton_run = run(problem_name, neat_dtype, "triton")
    compare.diagnostics_deviation(triton_run.diagnostics, problem.expected_diagnostics).check(
        tolerance(neat_dtype, STEPS).diagnostics, f"{where('diagnostics', neat_dtype, problem_name)}: diagnostics"
    )
    assert triton_run.tensor_counts == problem.expected_tensor_counts, (
        f"{where('diagnostics', neat_dtype, problem_name)}: per-tensor step counts t_k differ"
    )


@pytest.mark.neat_check("generic", row=ROW)
@pytest.mark.parametrize("problem_name", PROBLEMS)
@pytest.mark.parametrize("neat_dtype", DTYPES)
def test_parameters_match_generic_kernels(neat_dtype, problem_name):
    """The same arrays stepped by the generic kernels (independent of the stored golden outputs)."""
    compare.params_deviation(
        run(problem_name, neat_dtype, "triton").params, run(problem_name, neat_dtype, "generic").params
    ).check(tolerance(neat_dtype, STEPS).params, f"{where('generic', neat_dtype, problem_name)}: parameters")


@pytest.mark.neat_check("unchanged", row=ROW)
@pytest.mark.parametrize(
    "problem_name", [p for p in PROBLEMS if runner.problems()[p].skipped_steps or runner.problems()[p].has_inactive]
)
@pytest.mark.parametrize("neat_dtype", DTYPES)
def test_skipped_and_inactive_tensors_are_unchanged(neat_dtype, problem_name):
    """Bit for bit: every tensor on a step the reference skipped, and a tensor without a gradient."""
    problem = first_steps(runner.problems()[problem_name])
    params = run(problem_name, neat_dtype, "triton").params
    info = torch_backend()
    before = [info.to_numpy(info.from_numpy(p, neat_dtype)) for p in problem.params]
    skipped = set(problem.skipped_steps)
    for step, after in enumerate(params):
        frozen = [k for k, g in enumerate(problem.grads[step]) if step in skipped or g is None]
        for k in frozen:
            assert np.array_equal(after[k], before[k]), (
                f"{where('unchanged', neat_dtype, problem_name)}: step {step + 1} changed tensor {k} "
                f"by {np.max(np.abs(after[k] - before[k])):.3g}"
            )
        before = after


@pytest.mark.neat_check("per-tensor", row=ROW)
@pytest.mark.parametrize("neat_dtype", DTYPES)
def test_per_tensor_hyperparameters_follow_reference(neat_dtype):
    """SPEC v2.1: each tensor's own ``lr``, ``weight_decay``, ``betas``, ``eps``, changing from step to
    step, with inactive tensors and a skipped step (golden "inactive", every step)."""
    problem = runner.problems()["inactive"]
    params = runner.per_tensor_backend_run(torch_backend(), "inactive", neat_dtype, "triton")
    compare.params_deviation(params, runner.per_tensor_reference("inactive")).check(
        tolerance(neat_dtype, problem.num_steps).params,
        f"{ROW} × per-tensor [{neat_dtype}, golden problem 'inactive', every step]: parameters",
    )

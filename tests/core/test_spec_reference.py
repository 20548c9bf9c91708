"""The functional API follows SPEC.md: against the independent float64 reference
on random problems, and against the stored golden vectors."""

import numpy as np
import pytest

import neat
from neat.conformance import golden
from neat.conformance.reference import ReferenceNGAdam

from .problems import max_relative_error, random_problem


@pytest.mark.parametrize("chain", [True, False], ids=["chain", "general-graph"])
@pytest.mark.parametrize("seed", range(6))
def test_float64_follows_reference_for_50_steps(seed, chain):
    params, players, weights, hp, grads = random_problem(seed, chain=chain)
    opt = neat.ng_adam(**hp)
    reference = ReferenceNGAdam(params, players, weights, hp)
    state = opt.init(params, players=players, graph=weights)
    saw_conflict = saw_nsa = False
    for step_grads in grads:
        params, state = opt.step(params, step_grads, state)
        reference.step(step_grads)
        assert max_relative_error(params, reference.params) <= 1e-10
        saw_conflict |= bool(np.any(reference.kappa > 0))
        saw_nsa |= bool(np.any(reference.z != 0))
    info = opt.diagnostics(state)
    np.testing.assert_allclose(info["step_scale"], np.exp(reference.z.astype(np.float64)), rtol=1e-6)
    np.testing.assert_allclose(info["alignment"], reference.a, atol=1e-6)
    np.testing.assert_allclose(info["kappa"], reference.kappa, atol=1e-6)
    assert saw_conflict and saw_nsa, "the problem must exercise NGE and NSA"


GOLDEN = golden.load_all()


def test_golden_files_exist_for_this_spec_version():
    assert {p.name for p in GOLDEN} == {p.name for p in golden.problem_inputs()}
    assert all(p.spec_version == neat.SPEC_VERSION for p in GOLDEN)


@pytest.mark.parametrize("problem", GOLDEN, ids=lambda p: p.name)
def test_core_matches_golden_vectors(problem):
    opt = neat.ng_adam(**problem.hyperparameters)
    params = list(problem.params)
    state = opt.init(params, players=problem.players, graph=problem.weights)
    for step, grads in enumerate(problem.grads):
        with np.errstate(invalid="ignore"):
            params, state = opt.step(params, grads, state)
        assert max_relative_error(params, problem.expected_params[step]) <= 1e-10, f"step {step + 1}"
    info = opt.diagnostics(state)
    assert int(info["skipped_steps"]) == problem.expected_diagnostics["skipped_steps"][-1]
    np.testing.assert_allclose(info["step_scale"], problem.expected_diagnostics["step_scale"][-1], rtol=1e-6)


@pytest.mark.parametrize("problem", GOLDEN, ids=lambda p: p.name)
def test_golden_files_are_what_the_reference_produces(problem):
    """A stored file differs from a fresh reference run only if someone changed the math."""
    fresh = golden.solve(golden.GoldenProblem(problem.name, problem.hyperparameters, problem.players,
                                              problem.weights, problem.params, problem.grads))
    for stored, recomputed in zip(problem.expected_params, fresh.expected_params):
        for a, b in zip(stored, recomputed):
            np.testing.assert_array_equal(a, b)


def test_golden_problems_exercise_every_feature():
    by_name = {p.name: p for p in GOLDEN}
    assert np.any(by_name["chain3"].expected_diagnostics["kappa"] > 0)
    assert np.any(by_name["star5"].expected_diagnostics["step_scale"] != 1.0)
    assert by_name["skips"].expected_diagnostics["skipped_steps"][-1] == 4
    star = by_name["star5"].weights
    assert star[0, 2] and not star[1, 2], "star5 uses a non-chain graph"

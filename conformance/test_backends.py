"""Conformance of every registered backend, driven through the functional API (SPEC.md v1).

Each check runs on the kernels the core picks for the backend (``default``: its
fused ones if it registers any) and on :data:`neat.kernels.GENERIC`.
"""

from __future__ import annotations

import numpy as np
import pytest

from neat import arrays
from neat.conformance import compare, discovery, runner
from neat.conformance.adamw import adamw_trajectory
from neat.conformance.tolerances import DTYPES, tolerance


def _where(backend, check, dtype, path, problem) -> str:
    return f"backend {backend.name} × {check} [{dtype}, {path} kernels, golden problem '{problem}']"


def _non_finite_steps(problem) -> list[int]:
    return [s for s, grads in enumerate(problem.grads) if not all(np.all(np.isfinite(g)) for g in grads)]


@pytest.mark.neat_check("golden/{neat_dtype}")
def test_parameters_match_reference(neat_backend, neat_dtype, kernel_path, golden_problem):
    """Parameters after every step are within the dtype's tolerance of the float64 reference."""
    problem = runner.problems()[golden_problem]
    run = runner.backend_run(neat_backend, golden_problem, neat_dtype, kernel_path)
    where = _where(neat_backend, f"golden/{neat_dtype}", neat_dtype, kernel_path, golden_problem)
    compare.params_deviation(run.params, problem.expected_params).check(
        tolerance(neat_dtype, problem.num_steps).params, f"{where}: parameters")


@pytest.mark.neat_check("diagnostics")
def test_diagnostics_match_reference(neat_backend, neat_dtype, kernel_path, golden_problem):
    """Alignment, κ, λ and their mean match the reference; the skipped-step count is equal."""
    problem = runner.problems()[golden_problem]
    run = runner.backend_run(neat_backend, golden_problem, neat_dtype, kernel_path)
    where = _where(neat_backend, "diagnostics", neat_dtype, kernel_path, golden_problem)
    compare.diagnostics_deviation(run.diagnostics, problem.expected_diagnostics).check(
        tolerance(neat_dtype, problem.num_steps).diagnostics, f"{where}: diagnostics")


@pytest.mark.neat_check("adamw")
def test_reduces_to_adamw(neat_backend, neat_dtype, kernel_path):
    """``γ = ζ = 0`` is AdamW for any μ: the golden "adamw" problem, and an independent AdamW formula."""
    problem = runner.problems()["adamw"]
    assert problem.hyperparameters["gamma"] == problem.hyperparameters["zeta"] == 0.0
    tol = tolerance(neat_dtype, problem.num_steps).params
    where = _where(neat_backend, "adamw", neat_dtype, kernel_path, "adamw")
    formula = adamw_trajectory(problem.params, problem.grads, **problem.hyperparameters)
    run = runner.backend_run(neat_backend, "adamw", neat_dtype, kernel_path)
    compare.params_deviation(run.params, problem.expected_params).check(tol, f"{where}: parameters vs reference")
    for changes in ((), (("mu", 0.0),)):
        run = runner.backend_run(neat_backend, "adamw", neat_dtype, kernel_path, changes)
        label = f"{where}{' with ' + str(dict(changes)) if changes else ''}"
        compare.params_deviation(run.params, formula).check(tol, f"{label}: parameters vs the AdamW formula")
        scales = np.array([d["step_scale"] for d in run.diagnostics])
        assert np.all(scales == 1.0), f"{label}: step multipliers moved with zeta=0: {scales.min()}..{scales.max()}"


@pytest.mark.neat_check("skips")
def test_non_finite_steps_are_skipped(neat_backend, neat_dtype, kernel_path):
    """A step with a NaN or inf gradient changes no parameter, does not advance t, and is counted."""
    problem = runner.problems()["skips"]
    skipped = _non_finite_steps(problem)
    assert skipped, "the golden 'skips' problem has no non-finite step"
    run = runner.backend_run(neat_backend, "skips", neat_dtype, kernel_path)
    where = _where(neat_backend, "skips", neat_dtype, kernel_path, "skips")
    initial = [neat_backend.to_numpy(neat_backend.from_numpy(p, neat_dtype)) for p in problem.params]
    for s in skipped:
        before = run.params[s - 1] if s else initial
        for k, (new, old) in enumerate(zip(run.params[s], before)):
            assert np.array_equal(new, old), (
                f"{where}: step {s + 1} has non-finite gradients but tensor {k} changed by "
                f"{np.max(np.abs(new - old)):.3g}")
    expected_counts = [sum(1 for r in range(s + 1) if r not in skipped) for s in range(problem.num_steps)]
    assert run.counts == expected_counts, f"{where}: step count t {run.counts}, expected {expected_counts}"
    reported = [int(d["skipped_steps"]) for d in run.diagnostics]
    expected = [sum(1 for r in skipped if r <= s) for s in range(problem.num_steps)]
    assert reported == expected, f"{where}: skipped_steps {reported}, expected {expected}"


@pytest.mark.neat_check("state")
def test_checkpoint_resumes_identically(neat_backend, neat_dtype):
    """A state saved to the host mid-run and restored into a fresh state continues bit for bit."""
    problem, cut = runner.problems()["skips"], 20
    stepper = runner.Stepper(neat_backend, neat_dtype, "default", problem.hyperparameters)
    params, state = stepper.init(problem)
    host = lambda values: [neat_backend.to_numpy(v) for v in values]  # noqa: E731
    with runner.quiet_non_finite():
        for grads in problem.grads[:cut]:
            params, state = stepper.step(params, stepper.arrays(grads), state)
        saved_params, saved_state = host(params), runner.host_state(neat_backend, state)
        uninterrupted = []
        for grads in problem.grads[cut:]:
            params, state = stepper.step(params, stepper.arrays(grads), state)
            uninterrupted.append(host(params))
        final_state = runner.host_state(neat_backend, state)

        params = stepper.arrays(saved_params)
        state = runner.restore_state(saved_state, like=stepper.init(problem)[1])
        for s, grads in enumerate(problem.grads[cut:], start=cut):
            params, state = stepper.step(params, stepper.arrays(grads), state)
            for k, (a, b) in enumerate(zip(host(params), uninterrupted[s - cut])):
                assert np.array_equal(a, b), (
                    f"backend {neat_backend.name} × state [{neat_dtype}]: after restoring at step {cut}, "
                    f"step {s + 1} tensor {k} differs from the uninterrupted run by {np.max(np.abs(a - b)):.3g}")
    resumed = runner.host_state(neat_backend, state)
    for name, a, b in zip(final_state._fields, resumed, final_state):
        for x, y in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]):
            assert np.array_equal(x, y), f"backend {neat_backend.name} × state [{neat_dtype}]: final {name} differs"


def _other_dtype(stepper):
    others = [d for d in stepper.info.dtypes if d != stepper.dtype]
    if not others:
        pytest.skip(f"backend {stepper.info.name} declares a single dtype; a dtype mismatch cannot be built")
    return others[0]


def _as_int32(array):
    xp = arrays.namespace_of([array])
    return xp.astype(array, xp.int32)


def _replace_first(values, replacement):
    return [replacement, *values[1:]]


#: name → call that must raise TypeError or ValueError: (stepper, params, grads, state, inplace, problem).
BAD_INPUTS = {
    "fewer grads": lambda s, p, g, st, inplace, pr: s.step(p, g[:-1], st, inplace=inplace),
    "grad shape": lambda s, p, g, st, inplace, pr: s.step(
        p, _replace_first(g, s.arrays([np.zeros(7)])[0]), st, inplace=inplace),
    "grad dtype": lambda s, p, g, st, inplace, pr: s.step(
        p, _replace_first(g, s.info.from_numpy(pr.grads[0][0], _other_dtype(s))), st, inplace=inplace),
    "grad not an array": lambda s, p, g, st, inplace, pr: s.step(
        p, _replace_first(g, pr.grads[0][0].tolist()), st, inplace=inplace),
    "params not a list": lambda s, p, g, st, inplace, pr: s.step(p[0], g, st, inplace=inplace),
    "state of other params": lambda s, p, g, st, inplace, pr: s.step(p, g, s.opt.init(p[:-1]), inplace=inplace),
    "not a state": lambda s, p, g, st, inplace, pr: s.step(p, g, st._asdict(), inplace=inplace),
    "integer params": lambda s, p, g, st, inplace, pr: s.opt.init([_as_int32(p[0])]),
    "overlapping players": lambda s, p, g, st, inplace, pr: s.opt.init(p, players=[[0, 1], [1, 2, 3, 4]]),
    "negative graph": lambda s, p, g, st, inplace, pr: s.opt.init(p, players=pr.players, graph=-pr.weights),
}


@pytest.mark.neat_check("bad-input")
@pytest.mark.parametrize("bad_input", list(BAD_INPUTS))
def test_bad_input_rejected_without_change(neat_backend, bad_input):
    """Bad input raises TypeError/ValueError and leaves parameters, gradients and state as they were."""
    problem = runner.problems()["chain3"]
    stepper = runner.Stepper(neat_backend, neat_backend.dtypes[0], "default", problem.hyperparameters)
    params, state = stepper.init(problem)
    for grads in problem.grads[:3]:
        params, state = stepper.step(params, stepper.arrays(grads), state)
    grads = stepper.arrays(problem.grads[3])

    def snapshot():
        saved = runner.host_state(neat_backend, state)
        leaves = [x for field in saved for x in (field if isinstance(field, list) else [field])]
        return [*map(neat_backend.to_numpy, params), *map(neat_backend.to_numpy, grads), *leaves]

    before = snapshot()
    expected_next = [neat_backend.to_numpy(p) for p in stepper.step(params, grads, state)[0]]
    where = f"backend {neat_backend.name} × bad-input [{bad_input}]"
    for inplace in (False, True):
        with pytest.raises((TypeError, ValueError)) as error:
            BAD_INPUTS[bad_input](stepper, params, grads, state, inplace, problem)
        assert str(error.value), f"{where}: {type(error.value).__name__} without a message"
        for i, (now, then) in enumerate(zip(snapshot(), before)):
            assert np.array_equal(now, then), f"{where}: rejected input changed array {i} (inplace={inplace})"
    after_next = [neat_backend.to_numpy(p) for p in stepper.step(params, grads, state)[0]]
    for k, (a, b) in enumerate(zip(after_next, expected_next)):
        assert np.array_equal(a, b), f"{where}: the next valid step differs at tensor {k}"


@pytest.mark.neat_check("registration", registration=True)
def test_backend_registration(neat_backend):
    """The plug-in's ``neat_backend_info`` returned a usable record (a hook that raised fails here)."""
    assert not isinstance(neat_backend, discovery.BrokenPlugin), neat_backend.error
    assert neat_backend.name and isinstance(neat_backend.name, str), "a backend needs a name"
    unknown = sorted(set(neat_backend.dtypes) - set(DTYPES))
    assert neat_backend.dtypes and not unknown, (
        f"backend {neat_backend.name}: dtypes {neat_backend.dtypes} must be a non-empty subset of {DTYPES}")
    assert callable(neat_backend.from_numpy) and callable(neat_backend.to_numpy)
    reason = discovery.unavailable_reason(neat_backend)
    if reason:
        pytest.skip(f"backend {neat_backend.name}: {reason}")
    array = neat_backend.from_numpy(np.array([0.5, -2.0]), neat_backend.dtypes[0])
    assert arrays.namespace_of([array]) is not None
    assert np.array_equal(neat_backend.to_numpy(array), [0.5, -2.0]), "from_numpy/to_numpy do not round-trip"

"""Conformance of every registered backend, driven through the functional API (docs/spec.md v2).

A row is a backend stepped by one registered kernel set (``generic`` on every backend,
``foreach``, ``numba``, ``jax``, … where they can run its arrays): every check of the
row passes ``kernels=<name>`` to :func:`neat.functional.step`.
"""

from __future__ import annotations

import numpy as np
import pytest

from neat import arrays, functional
from neat.conformance import compare, discovery, runner
from neat.conformance.adamw import adamw_trajectory
from neat.conformance.tolerances import DTYPES, tolerance
from neat.kernel_selection import registered


def _where(backend, kernel_set, check, dtype, problem) -> str:
    return f"backend {backend.name} [{kernel_set}] × {check} [{dtype}, golden problem '{problem}']"


@pytest.mark.neat_check("golden/{neat_dtype}")
def test_parameters_match_reference(neat_backend, kernel_set, neat_dtype, golden_problem):
    """Parameters after every step are within the dtype's tolerance of the float64 reference."""
    problem = runner.problems()[golden_problem]
    run = runner.backend_run(neat_backend, golden_problem, neat_dtype, kernel_set)
    where = _where(neat_backend, kernel_set, f"golden/{neat_dtype}", neat_dtype, golden_problem)
    compare.params_deviation(run.params, problem.expected_params).check(
        tolerance(neat_dtype, problem.num_steps).params, f"{where}: parameters"
    )


@pytest.mark.neat_check("diagnostics")
def test_diagnostics_match_reference(neat_backend, kernel_set, neat_dtype, any_problem):
    """Alignment, κ, λ and their mean match the reference; the skipped-step count is equal."""
    problem = runner.problems()[any_problem]
    run = runner.backend_run(neat_backend, any_problem, neat_dtype, kernel_set)
    where = _where(neat_backend, kernel_set, "diagnostics", neat_dtype, any_problem)
    compare.diagnostics_deviation(run.diagnostics, problem.expected_diagnostics).check(
        tolerance(neat_dtype, problem.num_steps).diagnostics, f"{where}: diagnostics"
    )


@pytest.mark.neat_check("inactive")
def test_inactive_tensors_play_the_sub_game(neat_backend, kernel_set, neat_dtype, inactive_problem):
    """Gradients that are ``None`` (SPEC v2): the parameters follow the reference, an inactive
    tensor is left exactly as it was, and every count ``t_k`` is the reference's."""
    problem = runner.problems()[inactive_problem]
    run = runner.backend_run(neat_backend, inactive_problem, neat_dtype, kernel_set)
    where = _where(neat_backend, kernel_set, "inactive", neat_dtype, inactive_problem)
    compare.params_deviation(run.params, problem.expected_params).check(
        tolerance(neat_dtype, problem.num_steps).params, f"{where}: parameters"
    )
    assert run.tensor_counts == problem.expected_tensor_counts, f"{where}: per-tensor step counts t_k differ"
    _assert_unchanged(neat_backend, neat_dtype, problem, run.params, ~problem.active, where, "has no gradient")


@pytest.mark.neat_check("per-tensor")
def test_per_tensor_hyperparameters_follow_reference(neat_backend, kernel_set, neat_dtype):
    """SPEC v2.1: ``lr``, ``weight_decay``, ``betas`` and ``eps`` of each tensor (two param groups)
    changing from step to step (``β1`` cycled), with inactive tensors and a skipped step (golden
    "inactive"): the parameters follow the float64 reference, and an inactive tensor is left
    exactly as it was."""
    problem = runner.problems()["inactive"]
    params = runner.per_tensor_backend_run(neat_backend, "inactive", neat_dtype, kernel_set)
    where = _where(neat_backend, kernel_set, "per-tensor", neat_dtype, "inactive")
    compare.params_deviation(params, runner.per_tensor_reference("inactive")).check(
        tolerance(neat_dtype, problem.num_steps).params, f"{where}: parameters"
    )
    _assert_unchanged(neat_backend, neat_dtype, problem, params, ~problem.active, where, "has no gradient")


def _assert_unchanged(info, dtype, problem, params, frozen, where: str, why: str) -> None:
    """Tensor ``k`` is bit for bit unchanged by step ``s`` wherever ``frozen[s, k]``."""
    initial = [info.to_numpy(info.from_numpy(p, dtype)) for p in problem.params]
    for s, k in zip(*np.nonzero(frozen)):
        before = params[s - 1][k] if s else initial[k]
        assert np.array_equal(params[s][k], before), (
            f"{where}: at step {s + 1} tensor {k} {why} but changed by {np.max(np.abs(params[s][k] - before)):.3g}"
        )


@pytest.mark.neat_check("adamw")
def test_reduces_to_adamw(neat_backend, kernel_set, neat_dtype):
    """``γ = ζ = 0`` is AdamW for any μ, also with inactive tensors (per-tensor counts ``t_k``):
    against the golden "adamw" problem and an independent AdamW formula."""
    problem = runner.problems()["adamw"]
    assert problem.hyperparameters["gamma"] == problem.hyperparameters["zeta"] == 0.0
    tol = tolerance(neat_dtype, problem.num_steps).params
    where = _where(neat_backend, kernel_set, "adamw", neat_dtype, "adamw")
    run = runner.backend_run(neat_backend, "adamw", neat_dtype, kernel_set)
    compare.params_deviation(run.params, problem.expected_params).check(tol, f"{where}: parameters vs reference")
    off = (("gamma", 0.0), ("zeta", 0.0))
    for name, changes in (("adamw", ()), ("adamw", (("mu", 0.0),)), ("inactive", off)):
        variant = runner.problem_with(name, changes)
        formula = adamw_trajectory(variant.params, variant.grads, **variant.hyperparameters)
        run = runner.backend_run(neat_backend, name, neat_dtype, kernel_set, changes)
        label = f"{_where(neat_backend, kernel_set, 'adamw', neat_dtype, name)} with {dict(changes)}"
        compare.params_deviation(run.params, formula).check(tol, f"{label}: parameters vs the AdamW formula")
        scales = np.array([d["step_scale"] for d in run.diagnostics])
        assert np.all(scales == 1.0), f"{label}: step multipliers moved with zeta=0: {scales.min()}..{scales.max()}"


@pytest.mark.neat_check("skips")
def test_non_finite_steps_are_skipped(neat_backend, kernel_set, neat_dtype, skipping_problem):
    """A step with a NaN or inf gradient, or whose ``G_i`` overflows, changes no parameter,
    advances neither ``t`` nor any ``t_k``, and is counted (SPEC step 0)."""
    problem = runner.problems()[skipping_problem]
    skipped = problem.skipped_steps
    run = runner.backend_run(neat_backend, skipping_problem, neat_dtype, kernel_set)
    where = _where(neat_backend, kernel_set, "skips", neat_dtype, skipping_problem)
    frozen = np.zeros(problem.active.shape, dtype=bool)
    frozen[skipped] = True
    _assert_unchanged(neat_backend, neat_dtype, problem, run.params, frozen, where, "is in a skipped step")
    assert run.counts == problem.expected_counts, (
        f"{where}: step count t {run.counts}, expected {problem.expected_counts}"
    )
    assert run.tensor_counts == problem.expected_tensor_counts, f"{where}: per-tensor step counts t_k differ"
    reported = [int(d["skipped_steps"]) for d in run.diagnostics]
    expected = [int(c) for c in problem.expected_diagnostics["skipped_steps"]]
    assert reported == expected, f"{where}: skipped_steps {reported}, expected {expected}"


@pytest.mark.neat_check("state")
def test_checkpoint_resumes_identically(neat_backend, kernel_set, neat_dtype):
    """A state saved to the host mid-run (GameState fields and moments) and restored into a fresh
    state continues bit for bit (golden "inactive": per-tensor counts and a skipped step before the cut)."""
    problem, cut = runner.problems()["inactive"], 25
    stepper = runner.Stepper(neat_backend, neat_dtype, kernel_set, problem)
    params, state = stepper.init()
    where = f"backend {neat_backend.name} [{kernel_set}] × state [{neat_dtype}]"

    def host(values):
        return [neat_backend.to_numpy(v) for v in values]

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
        state = runner.restore_state(saved_state, like=stepper.init()[1])
        for s, grads in enumerate(problem.grads[cut:], start=cut):
            params, state = stepper.step(params, stepper.arrays(grads), state)
            for k, (a, b) in enumerate(zip(host(params), uninterrupted[s - cut])):
                assert np.array_equal(a, b), (
                    f"{where}: after restoring at step {cut}, step {s + 1} tensor {k} "
                    f"differs from the uninterrupted run by {np.max(np.abs(a - b)):.3g}"
                )
    resumed = runner.host_state(neat_backend, state)
    for name, value in final_state.items():
        for x, y in zip(
            value if isinstance(value, list) else [value], resumed[name] if isinstance(value, list) else [resumed[name]]
        ):
            assert np.array_equal(x, y), f"{where}: final {name} differs"


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
        p, _replace_first(g, s.arrays([np.zeros(7)])[0]), st, inplace=inplace
    ),
    "grad dtype": lambda s, p, g, st, inplace, pr: s.step(
        p, _replace_first(g, s.info.from_numpy(pr.grads[0][0], _other_dtype(s))), st, inplace=inplace
    ),
    "grad not an array": lambda s, p, g, st, inplace, pr: s.step(
        p, _replace_first(g, pr.grads[0][0].tolist()), st, inplace=inplace
    ),
    "params not a list": lambda s, p, g, st, inplace, pr: s.step(p[0], g, st, inplace=inplace),
    "state of other params": lambda s, p, g, st, inplace, pr: s.step(p, g, s.opt.init(p[:-1]), inplace=inplace),
    "not a state": lambda s, p, g, st, inplace, pr: s.step(p, g, st._asdict(), inplace=inplace),
    "inactive without topology": lambda s, p, g, st, inplace, pr: functional.step(
        p, _replace_first(g, None), st, s.config, kernels=s.kernel_set, inplace=inplace
    ),
    "integer params": lambda s, p, g, st, inplace, pr: s.opt.init([_as_int32(p[0])]),
    "overlapping players": lambda s, p, g, st, inplace, pr: s.opt.init(p, players=[[0, 1], [1, 2, 3, 4]]),
    "negative graph": lambda s, p, g, st, inplace, pr: s.opt.init(p, players=pr.players, graph=-pr.weights),
}


@pytest.mark.neat_check("bad-input")
@pytest.mark.parametrize("bad_input", list(BAD_INPUTS))
def test_bad_input_rejected_without_change(neat_backend, kernel_set, bad_input):
    """Bad input raises TypeError/ValueError and leaves parameters, gradients and state as they were."""
    problem = runner.problems()["chain3"]
    dtype = next(
        d for d in neat_backend.dtypes if discovery.kernel_set_reason(registered()[kernel_set], neat_backend, d) is None
    )
    stepper = runner.Stepper(neat_backend, dtype, kernel_set, problem)
    params, state = stepper.init()
    for grads in problem.grads[:3]:
        params, state = stepper.step(params, stepper.arrays(grads), state)
    grads = stepper.arrays(problem.grads[3])

    def snapshot():
        saved = runner.host_state(neat_backend, state)
        leaves = [x for value in saved.values() for x in (value if isinstance(value, list) else [value])]
        return [*map(neat_backend.to_numpy, params), *map(neat_backend.to_numpy, grads), *leaves]

    before = snapshot()
    expected_next = [neat_backend.to_numpy(p) for p in stepper.step(params, grads, state)[0]]
    where = f"backend {neat_backend.name} [{kernel_set}] × bad-input [{bad_input}]"
    for inplace in (False, True):
        with pytest.raises((TypeError, ValueError)) as error:
            BAD_INPUTS[bad_input](stepper, params, grads, state, inplace, problem)
        assert str(error.value), f"{where}: {type(error.value).__name__} without a message"
        for i, (now, then) in enumerate(zip(snapshot(), before)):
            assert np.array_equal(now, then), f"{where}: rejected input changed array {i} (inplace={inplace})"
    after_next = [neat_backend.to_numpy(p) for p in stepper.step(params, grads, state)[0]]
    for k, (a, b) in enumerate(zip(after_next, expected_next)):
        assert np.array_equal(a, b), f"{where}: the next valid step differs at tensor {k}"


@pytest.mark.neat_check("registration")
def test_backend_registration(backend_row):
    """The plug-in's ``neat_backend_info`` returned a usable record (a hook that raised fails here),
    its arrays could be probed, and the row's kernel set is registered and runs them."""
    backend = backend_row.backend
    assert not isinstance(backend, discovery.BrokenPlugin), backend.error
    assert backend_row.error is None, backend_row.error
    assert backend.name and isinstance(backend.name, str), "a backend needs a name"
    unknown = sorted(set(backend.dtypes) - set(DTYPES))
    assert backend.dtypes and not unknown, (
        f"backend {backend.name}: dtypes {backend.dtypes} must be a non-empty subset of {DTYPES}"
    )
    assert callable(backend.from_numpy) and callable(backend.to_numpy)
    reason = discovery.unavailable_reason(backend)
    if reason:
        pytest.skip(f"backend {backend.name}: {reason}")
    array = backend.from_numpy(np.array([0.5, -2.0]), backend.dtypes[0])
    assert arrays.namespace_of([array]) is not None
    assert np.array_equal(backend.to_numpy(array), [0.5, -2.0]), "from_numpy/to_numpy do not round-trip"
    kernel_set = registered()[backend_row.kernel_set]
    assert isinstance(getattr(kernel_set.kernels, "name", None), str), (
        f"kernel set {kernel_set.name!r}: its kernels have no name (neat.kernels.StepKernels)"
    )
    for dtype in backend_row.dtypes:
        assert discovery.kernel_set_reason(kernel_set, backend, dtype) is None

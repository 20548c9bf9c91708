"""The golden vectors against AdamW as the frameworks themselves define it (SPEC "Required
reductions": γ = ζ = 0 is ``torch.optim.AdamW`` and ``optax.adamw``), also when some
parameters have no gradient on some steps (``torch.optim.AdamW`` skips them and counts
steps per parameter, SPEC v2).

These check the reference, not a plug-in: they form the matrix row ``reference``
and run only when no row is selected with ``--neat-backend`` / ``--neat-adapter``.
"""

from __future__ import annotations

import numpy as np
import pytest

from neat.conformance import compare, runner
from neat.conformance.adamw import adamw_trajectory
from neat.conformance.reference import ReferenceNGAdam
from neat.conformance.tolerances import tolerance

#: The golden "adamw" problem, and the golden "inactive" one with γ = ζ = 0.
CASES = {"adamw": (), "inactive": (("gamma", 0.0), ("zeta", 0.0))}


def _case(name):
    """The problem and the reference's parameters after every step."""
    problem = runner.problem_with(name, CASES[name])
    if problem.expected_params:
        return problem, problem.expected_params
    assert problem.hyperparameters["gamma"] == problem.hyperparameters["zeta"] == 0.0
    reference = ReferenceNGAdam(problem.params, problem.players, problem.weights, problem.hyperparameters)
    trajectory = []
    with runner.quiet_non_finite():
        for grads in problem.grads:
            reference.step(grads)
            trajectory.append([p.copy() for p in reference.params])
    return problem, trajectory


def _check(trajectory, name, what):
    problem, expected = _case(name)
    compare.params_deviation(trajectory, expected).check(
        tolerance("float64", problem.num_steps).params, f"reference × {what}: golden '{name}' parameters"
    )


@pytest.mark.neat_check("adamw=formula", row="reference")
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_adamw_is_the_adamw_formula(case):
    problem, _ = _case(case)
    _check(adamw_trajectory(problem.params, problem.grads, **problem.hyperparameters), case, "adamw=formula")


@pytest.mark.neat_check("adamw=torch.optim.AdamW", row="reference")
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_adamw_is_torch_adamw(case):
    """``p.grad = None`` where the golden gradient is ``None``; a step with a non-finite
    gradient is not taken (NG-Adam's SPEC step 0; AdamW has no guard)."""
    torch = pytest.importorskip("torch", reason="torch not installed")
    problem, _ = _case(case)
    hp = problem.hyperparameters
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in problem.params]
    optimizer = torch.optim.AdamW(
        params, lr=hp["lr"], betas=hp["betas"], eps=hp["eps"], weight_decay=hp["weight_decay"]
    )
    trajectory = []
    for grads in problem.grads:
        for p, g in zip(params, grads):
            p.grad = None if g is None else torch.tensor(g, dtype=torch.float64)
        if all(np.all(np.isfinite(g)) for g in grads if g is not None):
            optimizer.step()
        trajectory.append([p.detach().numpy().copy() for p in params])
    _check(trajectory, case, "adamw=torch.optim.AdamW")


@pytest.mark.neat_check("adamw=optax.adamw", row="reference")
def test_golden_adamw_is_optax_adamw():
    """(optax has no gradient-less parameters: the "adamw" problem only.)"""
    jax = pytest.importorskip("jax", reason="jax not installed")
    optax = pytest.importorskip("optax", reason="optax not installed")
    problem, _ = _case("adamw")
    hp = problem.hyperparameters
    with jax.enable_x64(True):
        params = [jax.numpy.asarray(p, dtype=jax.numpy.float64) for p in problem.params]
        optimizer = optax.adamw(
            learning_rate=hp["lr"], b1=hp["betas"][0], b2=hp["betas"][1], eps=hp["eps"], weight_decay=hp["weight_decay"]
        )
        state = optimizer.init(params)
        update = jax.jit(optimizer.update)
        trajectory = []
        for grads in problem.grads:
            updates, state = update([jax.numpy.asarray(g, dtype=jax.numpy.float64) for g in grads], state, params)
            params = optax.apply_updates(params, updates)
            trajectory.append([np.asarray(p, dtype=np.float64) for p in params])
    _check(trajectory, "adamw", "adamw=optax.adamw")


@pytest.mark.neat_check("per-tensor=torch.optim.AdamW", row="reference")
def test_per_tensor_values_are_torch_adamw_param_groups():
    """SPEC v2.1 as the reference takes it (one value per tensor, changed every step): with γ = ζ = 0
    it is ``torch.optim.AdamW`` with two param groups holding the same values (golden "inactive",
    tensors without gradients included), each group's ``β1`` changed between steps."""
    torch = pytest.importorskip("torch", reason="torch not installed")
    problem = runner.problem_with("inactive", CASES["inactive"])
    first = runner.per_tensor_hyperparameters(problem, 0)
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in problem.params]
    group_of = {}  # tensor → group: the tensors sharing the first tensor's values, and the others
    for k in range(len(params)):
        group_of[k] = 0 if all(first[key][k] == first[key][0] for key in first) else 1
    optimizer = torch.optim.AdamW(
        [{"params": [p for k, p in enumerate(params) if group_of[k] == g]} for g in (0, 1)], foreach=False
    )
    reference = ReferenceNGAdam(problem.params, problem.players, problem.weights, problem.hyperparameters)
    expected, actual = [], []
    with runner.quiet_non_finite():
        for step, grads in enumerate(problem.grads):
            values = runner.per_tensor_hyperparameters(problem, step)
            reference.hp.update(values)
            reference.step(grads)
            expected.append([p.copy() for p in reference.params])
            for k, group in group_of.items():
                optimizer.param_groups[group].update({key: values[key][k] for key in values})
            for p, g in zip(params, grads):
                p.grad = None if g is None else torch.tensor(g, dtype=torch.float64)
            if all(np.all(np.isfinite(g)) for g in grads if g is not None):
                optimizer.step()
            actual.append([p.detach().numpy().copy() for p in params])
    assert len(set(group_of.values())) == 2
    assert len({tuple(reference.of_tensor("betas", k)) for k in group_of}) == 2
    compare.params_deviation(actual, expected).check(
        tolerance("float64", problem.num_steps).params, "reference × per-tensor=torch.optim.AdamW: golden 'inactive'"
    )

"""The golden "adamw" vectors against AdamW as the frameworks themselves define it
(SPEC "Required reductions": γ = ζ = 0 is ``torch.optim.AdamW`` and ``optax.adamw``).

These check the reference, not a plug-in: they form the matrix row ``reference``
and run only when no row is selected with ``--neat-backend`` / ``--neat-adapter``.
"""

from __future__ import annotations

import numpy as np
import pytest

from neat.conformance import compare, runner
from neat.conformance.adamw import adamw_trajectory
from neat.conformance.tolerances import tolerance


def _adamw_problem():
    problem = runner.problems()["adamw"]
    assert problem.hyperparameters["gamma"] == problem.hyperparameters["zeta"] == 0.0
    return problem, problem.hyperparameters


def _check(trajectory, problem, what):
    compare.params_deviation(trajectory, problem.expected_params).check(
        tolerance("float64", problem.num_steps).params, f"reference × {what}: golden 'adamw' parameters")


@pytest.mark.neat_check("adamw=formula", row="reference")
def test_golden_adamw_is_the_adamw_formula():
    problem, hp = _adamw_problem()
    _check(adamw_trajectory(problem.params, problem.grads, **hp), problem, "adamw=formula")


@pytest.mark.neat_check("adamw=torch.optim.AdamW", row="reference")
def test_golden_adamw_is_torch_adamw():
    torch = pytest.importorskip("torch", reason="torch not installed")
    problem, hp = _adamw_problem()
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in problem.params]
    optimizer = torch.optim.AdamW(params, lr=hp["lr"], betas=hp["betas"], eps=hp["eps"],
                                  weight_decay=hp["weight_decay"])
    trajectory = []
    for grads in problem.grads:
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()
        trajectory.append([p.detach().numpy().copy() for p in params])
    _check(trajectory, problem, "adamw=torch.optim.AdamW")


@pytest.mark.neat_check("adamw=optax.adamw", row="reference")
def test_golden_adamw_is_optax_adamw():
    jax = pytest.importorskip("jax", reason="jax not installed")
    optax = pytest.importorskip("optax", reason="optax not installed")
    problem, hp = _adamw_problem()
    with jax.enable_x64(True):
        params = [jax.numpy.asarray(p, dtype=jax.numpy.float64) for p in problem.params]
        optimizer = optax.adamw(learning_rate=hp["lr"], b1=hp["betas"][0], b2=hp["betas"][1], eps=hp["eps"],
                                weight_decay=hp["weight_decay"])
        state = optimizer.init(params)
        update = jax.jit(optimizer.update)
        trajectory = []
        for grads in problem.grads:
            updates, state = update([jax.numpy.asarray(g, dtype=jax.numpy.float64) for g in grads], state, params)
            params = optax.apply_updates(params, updates)
            trajectory.append([np.asarray(p, dtype=np.float64) for p in params])
    _check(trajectory, problem, "adamw=optax.adamw")

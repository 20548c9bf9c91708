"""examples/pde_fit.py: exact adjoint gradients, and neat.NGAdam actually fits the inverse problem."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

PATH = Path(__file__).resolve().parents[2] / "examples" / "pde_fit.py"
spec = importlib.util.spec_from_file_location("neat_example_pde_fit", PATH)
pde_fit = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = pde_fit  # dataclasses look their module up while the example loads
spec.loader.exec_module(pde_fit)


@pytest.fixture(scope="module")
def problem():
    return pde_fit.make_problem(np, cells=32, steps=60, observe_every=10)


def test_adjoint_gradients_match_finite_differences(problem):
    rng = np.random.default_rng(0)
    params = pde_fit.initial_guess(problem)
    params[0] = params[0] + 0.1 * rng.normal(size=params[0].shape)
    _, grads = pde_fit.loss_and_grads(problem, params)
    h = 1e-6
    for k in range(3):  # one random direction per player
        direction = rng.normal(size=params[k].shape)

        def loss_at(sign, k=k, direction=direction):
            moved = [p + sign * h * direction if i == k else p for i, p in enumerate(params)]
            return pde_fit.loss_and_grads(problem, moved)[0]

        finite_difference = (loss_at(1) - loss_at(-1)) / (2 * h)
        np.testing.assert_allclose(np.sum(grads[k] * direction), finite_difference, rtol=1e-6)


def test_ng_adam_recovers_the_coefficients(problem):
    before = pde_fit.errors(problem, pde_fit.initial_guess(problem))
    params, history, opt = pde_fit.fit(problem, iterations=300, lr=0.05)
    after = pde_fit.errors(problem, params)
    assert history[-1] < 1e-3 * history[0]
    assert after["kappa"] < 0.1 * before["kappa"] and after["rate"] < 0.01 * before["rate"]
    assert after["u0"] < before["u0"]  # better than the noisy first snapshot it starts from
    assert int(opt.state.game.count) == 300 and all(isinstance(p, np.ndarray) for p in params)


def test_example_runs_end_to_end_on_numpy(capsys):
    pde_fit.main(["--iterations", "2", "--numpy"])
    out = capsys.readouterr().out
    assert "array module: numpy" in out and "NG-Adam" in out and "Adam (gamma = zeta = 0)" in out

"""Inverse problem: recover a diffusion coefficient field, a reaction rate and an initial state.

The forward model is the 1-D periodic reaction–diffusion equation

    u_t = ∂x(κ(x) ∂x u) − r u,      κ = exp(s),  r = exp(q),

discretised with explicit Euler on a grid of ``N`` cells (grid units: dx = 1).
Noisy snapshots of ``u`` every few steps are the data. Unknowns, one player each:
the log-diffusivity field ``s`` (N values), the log-rate ``q`` (a 0-d array) and
the initial state ``u0`` (N values). Gradients are analytic: the discrete adjoint of the
scheme, run backwards through the stored trajectory. The code is written once for
NumPy and CuPy (``xp``); it uses CuPy when a GPU is usable, else NumPy::

    python examples/pde_fit.py                 # NG-Adam, then plain Adam for comparison
    python examples/pde_fit.py --iterations 300 --numpy
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from neat.inplace import NGAdam


@dataclass
class Problem:
    """Data and settings of one inverse problem; ``truth`` holds the generating parameters."""

    xp: Any
    dt: float
    steps: int
    observed: Any  # (steps + 1,) bool: which time levels are observed
    data: Any  # (steps + 1, N): observations (zeros where not observed)
    scale: float  # 1 / (number of observed values): the misfit is a mean
    smoothing: float  # weight of the smoothness penalty on s
    truth: dict


def array_module(force_numpy: bool = False):
    """CuPy when it is installed and has a GPU, else NumPy."""
    if not force_numpy:
        try:
            import cupy

            if cupy.cuda.runtime.getDeviceCount() > 0:
                return cupy
        except Exception:  # not installed, or no usable driver/device
            pass
    return np


def make_problem(
    xp,
    cells: int = 64,
    steps: int = 200,
    observe_every: int = 20,
    noise: float = 1e-3,
    smoothing: float = 1e-6,
    seed: int = 0,
) -> Problem:
    """A smooth, two-scale diffusivity, a decay rate and an initial state with bumps of several widths."""
    rng = np.random.default_rng(seed)
    x = np.arange(cells) / cells
    kappa = 0.6 + 0.3 * np.sin(2 * np.pi * x) + 0.4 * np.exp(-((x - 0.3) ** 2) / 0.005)
    u0 = sum(
        a * np.exp(-((x - c) ** 2) / w)
        for a, c, w in zip(rng.uniform(0.5, 1.5, 8), rng.uniform(0, 1, 8), rng.uniform(2e-4, 2e-3, 8))
    )
    truth = {"log_kappa": xp.asarray(np.log(kappa)), "log_rate": xp.asarray(np.log(0.02)), "u0": xp.asarray(u0)}
    dt = 0.2  # stable while dt·κ ≤ 1/2
    observed = np.zeros(steps + 1, dtype=bool)
    observed[::observe_every] = True
    problem = Problem(xp, dt, steps, xp.asarray(observed), None, 1.0 / (observed.sum() * cells), smoothing, truth)
    clean = simulate(problem, truth["log_kappa"], truth["log_rate"], truth["u0"])
    problem.data = xp.where(problem.observed[:, None], clean + noise * xp.asarray(rng.normal(size=clean.shape)), 0.0)
    return problem


def simulate(problem: Problem, log_kappa, log_rate, u0):
    """The trajectory ``u^0 … u^T``: ``u ← u + dt (F − F_{i−1}) − dt r u`` with flux ``F_i = κ_i (u_{i+1} − u_i)``."""
    xp = problem.xp
    kappa, rate = xp.exp(log_kappa), xp.exp(log_rate)
    trajectory = [u0]
    for _ in range(problem.steps):
        u = trajectory[-1]
        flux = kappa * (xp.roll(u, -1) - u)
        trajectory.append(u + problem.dt * (flux - xp.roll(flux, 1)) - problem.dt * rate * u)
    return xp.stack(trajectory)


def loss_and_grads(problem: Problem, params):
    """``L = ½ mean_obs (u − d)² + ½ β Σ (s_{i+1} − s_i)²`` and its exact gradients (discrete adjoint)."""
    xp = problem.xp
    log_kappa, log_rate, u0 = params
    kappa, rate = xp.exp(log_kappa), xp.exp(log_rate)
    trajectory = simulate(problem, log_kappa, log_rate, u0)
    scale = problem.scale
    misfit = xp.where(problem.observed[:, None], trajectory - problem.data, 0.0)
    ds = xp.roll(log_kappa, -1) - log_kappa
    loss = 0.5 * scale * xp.sum(misfit**2) + 0.5 * problem.smoothing * xp.sum(ds**2)

    grad_kappa, grad_rate = xp.zeros_like(kappa), xp.zeros_like(rate)
    adjoint = scale * misfit[-1]
    for n in range(problem.steps - 1, -1, -1):
        u = trajectory[n]
        du = xp.roll(u, -1) - u
        g = problem.dt * (adjoint - xp.roll(adjoint, -1))  # ∂/∂F_i of Σ_i λ_i dt (F_i − F_{i−1})
        grad_kappa += g * du
        grad_rate += -problem.dt * xp.sum(adjoint * u)
        flux_adjoint = g * kappa
        adjoint = (1.0 - problem.dt * rate) * adjoint + xp.roll(flux_adjoint, 1) - flux_adjoint + scale * misfit[n]
    grad_log_kappa = grad_kappa * kappa + problem.smoothing * (xp.roll(ds, 1) - ds)
    return loss, [grad_log_kappa, grad_rate * rate, adjoint]


def initial_guess(problem: Problem) -> list:
    """Constant diffusivity, a wrong rate, and the first (noisy) snapshot as the initial state."""
    xp = problem.xp
    cells = problem.data.shape[1]
    return [xp.full(cells, np.log(0.5)), xp.asarray(np.log(0.05)), problem.data[0].copy()]


def fit(problem: Problem, iterations: int, lr: float, **hyperparameters):
    """Fit in place with :class:`neat.NGAdam`, one player per unknown, ``lr`` on a cosine schedule;
    return params, loss history, optimizer."""
    params = initial_guess(problem)
    opt = NGAdam(params, lr, players=[[0], [1], [2]], **hyperparameters)
    history = []
    for t in range(iterations):
        loss, grads = loss_and_grads(problem, params)
        opt.step(grads, lr=lr * 0.5 * (1.0 + np.cos(np.pi * t / iterations)))
        history.append(loss)
    return params, [float(loss) for loss in history], opt


def errors(problem: Problem, params) -> dict:
    """Relative errors of κ, r and u0 against the generating parameters."""
    xp = problem.xp
    fitted = dict(zip(("kappa", "rate", "u0"), (xp.exp(params[0]), xp.exp(params[1]), params[2])))
    truth = {
        "kappa": xp.exp(problem.truth["log_kappa"]),
        "rate": xp.exp(problem.truth["log_rate"]),
        "u0": problem.truth["u0"],
    }
    return {name: float(xp.linalg.norm(fitted[name] - truth[name]) / xp.linalg.norm(truth[name])) for name in truth}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--numpy", action="store_true", help="use NumPy even when a GPU is available")
    args = parser.parse_args(argv)
    xp = array_module(args.numpy)
    problem = make_problem(xp)
    print(f"array module: {xp.__name__}, {problem.data.shape[1]} cells, {problem.steps} time steps")
    runs = {"NG-Adam": {}, "Adam (gamma = zeta = 0)": dict(gamma=0.0, zeta=0.0)}
    for label, changes in runs.items():
        start = time.perf_counter()
        params, history, opt = fit(problem, args.iterations, lr=args.lr, **changes)
        seconds = time.perf_counter() - start
        summary = ", ".join(f"{name} {value:.2e}" for name, value in errors(problem, params).items())
        step_scale = opt.diagnostics()["step_scale"]
        print(
            f"{label:>24}: loss {history[0]:.3e} → {history[-1]:.3e} in {seconds:.1f} s; "
            f"relative errors: {summary}; step scales {np.round(np.asarray(step_scale.tolist()), 2)}"
        )


if __name__ == "__main__":
    main()

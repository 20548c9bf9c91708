"""Drive a backend through the functional API, or an adapter through its ``run``, on a golden problem.

A backend row is a backend and a kernel set by name (``"generic"``, ``"foreach"``, …):
every step goes through :func:`neat.functional.step` with ``kernels=<name>`` and the
problem's :class:`~neat.topology.Topology`, so gradients that are ``None`` (inactive
tensors, SPEC v2) play the sub-game. Runs are cached per (plug-in, problem, dtype,
kernel set, hyperparameter changes): the checks of one row share them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import warnings
from dataclasses import dataclass

import array_api_compat
import numpy as np

import neat
from neat import arrays, functional
from neat.config import NGAdamConfig
from neat.conformance import golden
from neat.conformance.reference import ReferenceNGAdam
from neat.plugins import AdapterInfo, BackendInfo
from neat.state import GameState, NGAdamState
from neat.topology import Topology


@functools.cache
def problems() -> dict:
    """The golden problems of the current spec version, by name."""
    return {p.name: p for p in golden.load_all()}


def problem_with(name: str, changes: tuple = ()) -> golden.GoldenProblem:
    """Golden problem ``name`` with some hyperparameters changed (its expected outputs then do not apply)."""
    problem = problems()[name]
    if not changes:
        return problem
    return dataclasses.replace(
        problem,
        hyperparameters=dict(problem.hyperparameters, **dict(changes)),
        expected_params=[],
        expected_diagnostics={},
    )


@dataclass
class BackendRun:
    """A backend's trajectory on a problem: host (float64) copies after every step."""

    params: list
    diagnostics: list
    counts: list
    tensor_counts: list


def host_diagnostics(info: BackendInfo, state) -> dict:
    """:func:`neat.diagnostics` read back to the host."""
    return {key: info.to_numpy(value) for key, value in neat.diagnostics(state).items()}


def host_state(info: BackendInfo, state: NGAdamState) -> dict:
    """A checkpoint as float64 NumPy arrays: every :class:`GameState` field and the moments
    (the tables are not state: they follow from the topology)."""
    saved = {name: info.to_numpy(getattr(state.game, name)) for name in GameState._fields}
    saved["exp_avg"] = [info.to_numpy(m) for m in state.exp_avg]
    saved["exp_avg_sq"] = [info.to_numpy(v) for v in state.exp_avg_sq]
    return saved


def restore_state(saved: dict, like: NGAdamState) -> NGAdamState:
    """A :func:`host_state` checkpoint back in the namespace, dtypes and device of ``like``."""

    def restore(value, leaf):
        xp = arrays.namespace_of([leaf], "state")
        values = np.asarray(value)
        if xp.isdtype(leaf.dtype, "integral"):
            values = values.astype(np.int64)
        return xp.asarray(values.tolist(), dtype=leaf.dtype, device=array_api_compat.device(leaf))

    game = GameState(*(restore(saved[name], getattr(like.game, name)) for name in GameState._fields))
    return NGAdamState(
        game,
        [restore(m, leaf) for m, leaf in zip(saved["exp_avg"], like.exp_avg)],
        [restore(v, leaf) for v, leaf in zip(saved["exp_avg_sq"], like.exp_avg_sq)],
        like.tables,
    )


class Stepper:
    """A backend, a dtype and a kernel set, with the hyperparameters and topology of a problem."""

    def __init__(self, info: BackendInfo, dtype: str, kernel_set: str, problem: golden.GoldenProblem):
        self.info, self.dtype, self.kernel_set, self.problem = info, dtype, kernel_set, problem
        self.opt = neat.ng_adam(**problem.hyperparameters, kernels=kernel_set)
        self.config: NGAdamConfig = self.opt.config
        self.topology = Topology.build(len(problem.params), problem.players, problem.weights, mu=self.config.mu)

    def arrays(self, values) -> list:
        """Backend arrays of this dtype; ``None`` (an inactive tensor's gradient) stays ``None``."""
        return [
            None if v is None else self.info.from_numpy(np.asarray(v, dtype=np.float64), self.dtype) for v in values
        ]

    def init(self):
        params = self.arrays(self.problem.params)
        return params, functional.init_state(params, self.topology)

    def step(self, params, grads, state, **kwargs):
        return functional.step(
            params, grads, state, self.config, kernels=self.kernel_set, topology=self.topology, **kwargs
        )


@functools.cache
def backend_run(
    info: BackendInfo, problem_name: str, dtype: str, kernel_set: str, hyperparameter_changes: tuple = ()
) -> BackendRun:
    """Run ``info``'s arrays with ``kernel_set`` over every step of a golden problem."""
    problem = problem_with(problem_name, hyperparameter_changes)
    stepper = Stepper(info, dtype, kernel_set, problem)
    params, state = stepper.init()
    run = BackendRun([], [], [], [])
    with quiet_non_finite():
        for grads in problem.grads:
            params, state = stepper.step(params, stepper.arrays(grads), state)
            run.params.append([info.to_numpy(p) for p in params])
            run.diagnostics.append(host_diagnostics(info, state))
            run.counts.append(int(info.to_numpy(state.game.count)))
            run.tensor_counts.append([int(c) for c in info.to_numpy(state.game.tensor_count)])
    return run


def per_tensor_hyperparameters(problem: golden.GoldenProblem, step: int) -> dict:
    """SPEC v2.1, the values of step ``step`` (from 0) for the "per-tensor" check: two param groups
    (the tensors of the first half of the players, and the others) with their own ``lr``,
    ``weight_decay``, ``betas`` and ``eps``, and ``β1`` cycled from step to step in opposite
    directions, as a one-cycle schedule with per-group momenta cycles it. One value per tensor
    each (``betas``: a pair per tensor), as :class:`~neat.conformance.reference.ReferenceNGAdam` takes them."""
    first = {k for player in problem.players[: len(problem.players) // 2] for k in player}
    cycle = 0.5 * (1.0 + math.cos(math.pi * step / 8))
    groups = (
        dict(lr=0.05, weight_decay=0.01, betas=(0.85 + 0.1 * cycle, 0.99), eps=1e-8),
        dict(lr=0.02, weight_decay=0.1, betas=(0.95 - 0.1 * cycle, 0.9), eps=1e-3),
    )
    of_tensor = [groups[0 if k in first else 1] for k in range(len(problem.params))]
    return {name: [values[name] for values in of_tensor] for name in groups[0]}


@functools.cache
def per_tensor_reference(problem_name: str) -> list:
    """The float64 reference's parameters after every step of a golden problem run with
    :func:`per_tensor_hyperparameters`."""
    problem = problems()[problem_name]
    reference = ReferenceNGAdam(problem.params, problem.players, problem.weights, problem.hyperparameters)
    trajectory = []
    with quiet_non_finite():
        for step, grads in enumerate(problem.grads):
            reference.hp.update(per_tensor_hyperparameters(problem, step))
            reference.step(grads)
            trajectory.append([np.array(p) for p in reference.params])
    return trajectory


@functools.cache
def per_tensor_backend_run(info: BackendInfo, problem_name: str, dtype: str, kernel_set: str) -> list:
    """:func:`per_tensor_reference`'s run by a backend: ``lr``, ``weight_decay``, ``betas`` and ``eps``
    handed to :func:`neat.functional.step` as lists of one value per tensor at every step."""
    problem = problems()[problem_name]
    stepper = Stepper(info, dtype, kernel_set, problem)
    params, state = stepper.init()
    trajectory = []
    with quiet_non_finite():
        for step, grads in enumerate(problem.grads):
            values = per_tensor_hyperparameters(problem, step)
            beta1, beta2 = (list(column) for column in zip(*values.pop("betas")))
            params, state = stepper.step(params, stepper.arrays(grads), state, betas=(beta1, beta2), **values)
            trajectory.append([info.to_numpy(p) for p in params])
    return trajectory


@functools.cache
def adapter_run(info: AdapterInfo, problem_name: str, dtype: str, hyperparameter_changes: tuple = ()) -> list:
    """The adapter's parameters after every step of a golden problem (float64 NumPy arrays)."""
    with quiet_non_finite():
        steps = info.run(problem_with(problem_name, hyperparameter_changes), dtype)
    return [[np.asarray(p, dtype=np.float64) for p in step] for step in steps]


@contextlib.contextmanager
def quiet_non_finite():
    """Silence the warnings NumPy-like libraries give for the NaN/inf gradients of skipped steps."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield

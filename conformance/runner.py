"""Drive a backend through the functional API, or an adapter through its ``run``, on a golden problem.

Runs are cached per (plug-in, problem, dtype, kernels, hyperparameters): the
checks of one row share them, so each trajectory is computed once per session.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from dataclasses import dataclass

import array_api_compat
import numpy as np

import neat
from neat import arrays, functional
from neat.conformance import golden
from neat.kernels import GENERIC
from neat.plugins import AdapterInfo, BackendInfo, plugin_manager
from neat.state import NGAdamState

#: Kernel paths a backend is checked on: the ones the core picks, and the generic array-API passes.
KERNEL_PATHS = ("default", "generic")


@functools.lru_cache(maxsize=None)
def problems() -> dict:
    """The golden problems of the current spec version, by name."""
    return {p.name: p for p in golden.load_all()}


@dataclass
class BackendRun:
    """A backend's trajectory on a problem: host (float64) copies after every step."""

    params: list
    diagnostics: list
    counts: list


def fused_kernels(info: BackendInfo, dtype: str):
    """The kernels the backend registers for its arrays of ``dtype`` through ``neat_step_kernels``, or ``None``."""
    xp = arrays.namespace_of([info.from_numpy(np.zeros(1), dtype)])
    return plugin_manager().hook.neat_step_kernels(xp=xp)


def kernels_for(path: str):
    """``None`` (the core picks, as users get it) for ``"default"``; :data:`GENERIC` for ``"generic"``."""
    return {"default": None, "generic": GENERIC}[path]


def host_diagnostics(info: BackendInfo, state) -> dict:
    """:func:`neat.diagnostics` read back to the host."""
    return {key: info.to_numpy(value) for key, value in neat.diagnostics(state).items()}


def host_state(info: BackendInfo, state: NGAdamState) -> NGAdamState:
    """Every array of ``state`` as a float64 NumPy array: a checkpoint that any backend can restore."""
    return NGAdamState(*(
        [info.to_numpy(a) for a in field] if isinstance(field, list) else info.to_numpy(field)
        for field in state))


def restore_state(host: NGAdamState, like: NGAdamState) -> NGAdamState:
    """A checkpoint back on the device, dtypes and namespace of ``like``."""

    def restore(value, leaf):
        xp = arrays.namespace_of([leaf], "state")
        values = np.asarray(value)
        if xp.isdtype(leaf.dtype, "integral"):
            values = values.astype(np.int64)
        return xp.asarray(values.tolist(), dtype=leaf.dtype, device=array_api_compat.device(leaf))

    return NGAdamState(*(
        [restore(v, leaf) for v, leaf in zip(field, like_field)] if isinstance(field, list)
        else restore(field, like_field)
        for field, like_field in zip(host, like)))


class Stepper:
    """A backend, a dtype and a kernel path, with the NG-Adam of a problem's hyperparameters."""

    def __init__(self, info: BackendInfo, dtype: str, path: str, hyperparameters: dict):
        self.info, self.dtype = info, dtype
        self.opt = neat.ng_adam(**hyperparameters)
        self.kernels = kernels_for(path)

    def arrays(self, values) -> list:
        return [self.info.from_numpy(np.asarray(v, dtype=np.float64), self.dtype) for v in values]

    def init(self, problem: golden.GoldenProblem):
        params = self.arrays(problem.params)
        return params, self.opt.init(params, players=problem.players, graph=problem.weights)

    def step(self, params, grads, state, **kwargs):
        if self.kernels is None and not kwargs:
            return self.opt.step(params, grads, state)
        return functional.step(params, grads, state, self.opt.config, kernels=self.kernels, **kwargs)


@functools.lru_cache(maxsize=None)
def backend_run(info: BackendInfo, problem_name: str, dtype: str, path: str,
                hyperparameter_changes: tuple = ()) -> BackendRun:
    """Run ``info`` over every step of a golden problem (with optional hyperparameter changes).

    Without fused kernels the default path is the generic one, so that run is shared."""
    if path == "generic" and fused_kernels(info, dtype) is None:
        return backend_run(info, problem_name, dtype, "default", hyperparameter_changes)
    problem = problems()[problem_name]
    stepper = Stepper(info, dtype, path, dict(problem.hyperparameters, **dict(hyperparameter_changes)))
    params, state = stepper.init(problem)
    run = BackendRun([], [], [])
    with quiet_non_finite():
        for grads in problem.grads:
            params, state = stepper.step(params, stepper.arrays(grads), state)
            run.params.append([info.to_numpy(p) for p in params])
            run.diagnostics.append(host_diagnostics(info, state))
            run.counts.append(int(info.to_numpy(state.count)))
    return run


@functools.lru_cache(maxsize=None)
def adapter_run(info: AdapterInfo, problem_name: str, dtype: str) -> list:
    """The adapter's parameters after every step of a golden problem (float64 NumPy arrays)."""
    with quiet_non_finite():
        steps = info.run(problems()[problem_name], dtype)
    return [[np.asarray(p, dtype=np.float64) for p in step] for step in steps]


@contextlib.contextmanager
def quiet_non_finite():
    """Silence the warnings NumPy-like libraries give for the NaN/inf gradients of skipped steps."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield

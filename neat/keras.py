"""Keras 3 front end: ``neat.keras.NGAdam`` for ``model.compile`` and the ``NEATDiagnostics`` callback.

Every step is :func:`neat.functional.step` on the Keras backend's own tensors
(torch tensors, JAX arrays or tracers), with the kernels that
:func:`neat.kernel_selection.select_kernels` picks for them. The optimizer state
lives in Keras variables (the fields of :class:`neat.state.GameState`, then
``m`` and ``v`` per tensor), so Keras tracks it, ``stateless_apply`` (the JAX
trainer's jitted step) threads it, and ``model.save`` / ``load_model`` restore it.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import array_api_compat
import keras
import numpy as np

from neat import arrays, functional
from neat.adapters import keras_adapter
from neat.config import DEFAULTS, NGAdamConfig
from neat.kernel_selection import select_kernels
from neat.kernels import StepKernels
from neat.state import GameState, NGAdamState
from neat.topology import GameTables, Topology

_CALLER_DEPTH = 8  # how far up the call stack ``build`` looks for the model being trained


@dataclass(frozen=True, eq=False)
class _Plan:
    """Everything a step needs that is fixed when the optimizer is built.

    Held in one plain object so that Keras' attribute tracking does not adopt the
    model's variables as the optimizer's own; nothing here is rebuilt per step.
    """

    tensors: tuple  # the model variables NEAT steps, in tensor order
    keys: tuple  # their ``_var_key``
    topology: Topology
    tables: GameTables
    kernels: StepKernels  # chosen by ``select_kernels`` for the variables' arrays
    inplace: bool  # torch: the step writes into the variables' own tensors
    step: Callable[..., Any]  # (params, grads, state, lr=) → (params, state); jitted on JAX
    no_grad: Callable[[], Any]  # a context without autograd tape (torch) or a null context


@keras.saving.register_keras_serializable(package="neat")
class NGAdam(keras.optimizers.Optimizer):
    """NG-Adam (SPEC.md, spec v2) as a Keras optimizer.

    Arguments follow ``keras.optimizers.AdamW`` (``learning_rate`` may be a
    schedule or a callable; ``weight_decay`` is decoupled, SPEC step 9, and
    honours ``exclude_from_weight_decay``; ``clipnorm``, ``global_clipnorm``,
    ``clipvalue``, ``use_ema``, ``gradient_accumulation_steps`` and
    ``loss_scale_factor`` work as in every Keras optimizer). ``epsilon`` is
    SPEC's ε, added after the square root of the bias-corrected ``v`` as in
    ``torch.optim.AdamW``; Keras' own Adam adds ``ε·√(1 − β2^t)`` instead.

    NEAT's hyperparameters: ``gamma`` (γ, NGE strength), ``zeta`` (ζ, NSA rate),
    ``mu`` (μ, graph coupling), ``step_bounds`` (λmin, λmax), ``leak`` (ρ).

    ``players``: lists of indices into the variables the optimizer is built with
    (``None``: one player per layer that owns trainable weights). ``graph``: an
    ``n × n`` weight matrix, ``(i, j, weight)`` edges, or ``None``: the model's
    layer connectivity when the optimizer is built by ``fit``/``load_model`` on a
    functional or Sequential model, else the chain. ``kernels``: ``None`` (the
    fastest registered kernel set for the variables' arrays) or a registered name
    such as ``"generic"``.

    A variable Keras passes no gradient for (unused by the loss on the torch
    backend) is inactive in that step: the game is played by the other players
    (SPEC v2). NEAT's step count ``t`` does not advance on a skipped
    (non-finite) step; ``optimizer.iterations``, which drives learning-rate
    schedules, counts every call.
    """

    def __init__(self, learning_rate=DEFAULTS["lr"], beta_1=DEFAULTS["betas"][0], beta_2=DEFAULTS["betas"][1],
                 epsilon=DEFAULTS["eps"], weight_decay=DEFAULTS["weight_decay"], gamma=DEFAULTS["gamma"],
                 zeta=DEFAULTS["zeta"], mu=DEFAULTS["mu"], step_bounds=DEFAULTS["step_bounds"],
                 leak=DEFAULTS["leak"], players=None, graph=None, kernels=None, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.neat_config = NGAdamConfig(
            lr=learning_rate if isinstance(learning_rate, float) else DEFAULTS["lr"],
            betas=(beta_1, beta_2), eps=epsilon, weight_decay=0.0 if weight_decay is None else weight_decay,
            gamma=gamma, zeta=zeta, mu=mu, step_bounds=step_bounds, leak=leak)
        if kernels is not None and not isinstance(kernels, str):
            raise TypeError(f"kernels must be None or the name of a registered kernel set, got {kernels!r}")
        self.kernels = kernels
        self.players = None if players is None else [[int(k) for k in group] for group in players]
        self.graph = _graph_to_config(graph)
        self.player_names: list[str] = []

    # ------------------------------------------------------------------ state
    def build(self, variables):
        """Fix players and graph, pick the kernels and create the state variables (SPEC "State")."""
        if self.built:
            return
        tensors = [v for v in variables if not self._overwrite_variable_with_gradient(v)]
        players, graph, player_names = self._players_and_graph(tensors)
        topology = Topology.build(len(tensors), players, graph, mu=self.neat_config.mu)
        super().build(variables)
        values = [v.value for v in tensors]
        fresh = functional.init_state(values, topology)
        kernels = select_kernels(arrays.namespace_of(values, "variables"), values, self.kernels)
        self.player_names = player_names
        inplace = keras.config.backend() == "torch"
        step = self._bound_step(kernels, topology, inplace, self._weight_decays(tensors, fresh.game.log_step))
        self._plan = _Plan(tuple(tensors), tuple(self._var_key(v) for v in tensors), topology, fresh.tables,
                           kernels, inplace, step, _no_grad_context())
        self._game = GameState(*(self._variable_like(value, f"neat_{field}")
                                 for field, value in zip(GameState._fields, fresh.game)))
        names = [v.path.replace("/", "_") for v in tensors]
        self._exp_avg = [self._variable_like(m, f"{n}_exp_avg") for m, n in zip(fresh.exp_avg, names)]
        self._exp_avg_sq = [self._variable_like(v, f"{n}_exp_avg_sq") for v, n in zip(fresh.exp_avg_sq, names)]

    def _variable_like(self, value, name: str):
        """An optimizer variable holding ``value`` (same shape and dtype)."""
        variable = self.add_variable(tuple(value.shape), dtype=keras.backend.standardize_dtype(value.dtype),
                                     name=name)
        variable.assign(value)
        return variable

    def _players_and_graph(self, tensors):
        """Explicit players, else the layers of the model being trained, else the variables' owning paths."""
        if self.players is not None:
            return self.players, _graph_from_config(self.graph), [f"player_{i}" for i in range(len(self.players))]
        model = _model_being_built(tensors)
        if model is not None:
            layout = keras_adapter.model_layout(model, tensors)
        else:
            layout = keras_adapter.path_layout(tensors)
        graph = layout.graph if self.graph is None else _graph_from_config(self.graph)
        return layout.players, graph, list(layout.player_names)

    def _weight_decays(self, tensors, like):
        """ω per tensor, 0 where ``exclude_from_weight_decay`` excludes it (SPEC step 9): a ``(K,)``
        array like ``like`` (fixed once built: Keras allows exclusions only before ``build``)."""
        xp = array_api_compat.array_namespace(like)
        decay = self.neat_config.weight_decay
        return xp.asarray([decay if self._use_weight_decay(v) else 0.0 for v in tensors], dtype=like.dtype,
                          device=array_api_compat.device(like))

    def _bound_step(self, kernels, topology, inplace: bool, weight_decay):
        """:func:`neat.functional.step` with everything but the arrays and ``lr`` bound. On JAX it
        is jitted (one dispatch for an eager ``apply``, inlined into the trainer's jitted step)."""
        step = functools.partial(functional.step, config=self.neat_config, weight_decay=weight_decay,
                                 kernels=kernels, topology=topology, inplace=inplace)
        return _jax_jit(step) if keras.config.backend() == "jax" else step

    def _state(self) -> NGAdamState:
        """The core's state, from the variables' current (possibly traced) values."""
        return NGAdamState(GameState(*(v.value for v in self._game)), [m.value for m in self._exp_avg],
                           [v.value for v in self._exp_avg_sq], self._plan.tables)

    def game_state(self) -> GameState:
        """The current :class:`~neat.state.GameState` (backend tensors; ``count`` is NEAT's ``t``)."""
        if not self.built:
            raise ValueError("NGAdam has no state before it is built (call fit or apply first)")
        return self._state().game

    # ------------------------------------------------------------------- step
    def _apply_weight_decay(self, variables):
        """No-op: NEAT decays inside its step (SPEC step 9), so a skipped step does not decay."""

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        """One SPEC step on all tensors at once (Keras calls this once per ``apply``); a tensor
        without a gradient here (Keras filtered it out) is inactive in this step."""
        plan = self._plan
        given = dict(zip(map(self._var_key, trainable_variables), grads))
        grads = [given.get(key) for key in plan.keys]
        with plan.no_grad():
            params, state = [v.value for v in plan.tensors], self._state()
            new_params, new_state = plan.step(params, grads, state, lr=keras.ops.convert_to_tensor(learning_rate))
            for variables, old, new in ((plan.tensors, params, new_params), (self._game, state.game, new_state.game),
                                        (self._exp_avg, state.exp_avg, new_state.exp_avg),
                                        (self._exp_avg_sq, state.exp_avg_sq, new_state.exp_avg_sq)):
                self._store(variables, old, new)

    def _store(self, variables, old, new) -> None:
        """Put the new values into the variables: nothing to do for a value the step wrote in place;
        on torch the others are copied into the variables' own tensors (a Keras ``assign`` costs
        ten times that copy, per tensor), on JAX they are assigned (traced in the trainer's step)."""
        for variable, old_value, new_value in zip(variables, old, new):
            if new_value is old_value:
                continue
            if self._plan.inplace:
                old_value[...] = new_value
            else:
                self.assign(variable, new_value)

    # ------------------------------------------------------------ read & save
    def diagnostics(self) -> dict:
        """Per-player ``alignment``, ``kappa``, ``step_scale`` and global ``mean_alignment``,
        ``skipped_steps`` (SPEC "Diagnostics") as backend tensors; ``player_names`` labels the players."""
        return {**functional.diagnostics(self.game_state()), "player_names": list(self.player_names)}

    def get_config(self):
        config = super().get_config()
        beta_1, beta_2 = self.neat_config.betas
        config.update(beta_1=beta_1, beta_2=beta_2, epsilon=self.neat_config.eps, gamma=self.neat_config.gamma,
                      zeta=self.neat_config.zeta, mu=self.neat_config.mu,
                      step_bounds=list(self.neat_config.step_bounds), leak=self.neat_config.leak,
                      players=self.players, graph=self.graph, kernels=self.kernels)
        return config


def _graph_to_config(graph):
    """A JSON-safe graph: ``None``, an ``n × n`` list, or ``{"edges": [[i, j, w], …]}``."""
    if graph is None or isinstance(graph, dict):
        return graph
    if isinstance(graph, (list, tuple)) and all(isinstance(edge, tuple) for edge in graph):
        return {"edges": [[int(i), int(j), float(w)] for i, j, w in graph]}
    return np.asarray(graph, dtype=np.float64).tolist()


def _graph_from_config(graph):
    if isinstance(graph, dict):
        return [tuple(edge) for edge in graph["edges"]]
    return graph


def _model_being_built(tensors):
    """The ``keras.Model`` whose trainable variables are ``tensors``, found among the callers of
    ``build`` (``fit`` and ``load_model`` build the optimizer from inside the model's methods)."""
    keys = [id(v) for v in tensors]
    frame = inspect.currentframe()
    try:
        for _ in range(_CALLER_DEPTH):
            frame = frame.f_back
            if frame is None:
                return None
            candidate = frame.f_locals.get("self")
            if isinstance(candidate, keras.Model) and [id(v) for v in candidate.trainable_variables] == keys:
                return candidate
        return None
    finally:
        del frame


def _jax_jit(fn):
    import jax

    return jax.jit(fn)


def _no_grad_context():
    """The context that keeps the step off the autograd tape: ``torch.no_grad`` on the torch backend."""
    if keras.config.backend() == "torch":
        import torch

        return torch.no_grad
    return contextlib.nullcontext


class NEATDiagnostics(keras.callbacks.Callback):
    """Adds NG-Adam's diagnostics to ``logs`` at the end of each epoch, as floats:

    ``neat_mean_alignment``, ``neat_skipped_steps`` and, per player,
    ``neat_step_scale/<player>`` (λ), ``neat_conflict/<player>`` (κ), ``neat_alignment/<player>`` (a).
    With ``log_dir`` they are also written as TensorBoard scalars (needs the
    ``tensorboard`` package, not TensorFlow; without it a warning says so and only ``logs`` is filled).
    Reading them is the only host transfer, once per epoch.
    """

    def __init__(self, log_dir=None):
        super().__init__()
        self._writer = _event_writer(log_dir) if log_dir is not None else None

    def on_epoch_end(self, epoch, logs=None):
        optimizer = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)
        if not isinstance(optimizer, NGAdam):
            raise TypeError(f"NEATDiagnostics needs a model compiled with neat.keras.NGAdam, "
                            f"got {type(optimizer).__qualname__}")
        values = diagnostics_as_floats(optimizer)
        if logs is not None:
            logs.update(values)
        if self._writer is not None:
            self._writer(values, epoch)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


def diagnostics_as_floats(optimizer: NGAdam) -> dict[str, float]:
    """The optimizer's diagnostics as ``{log key: float}`` (this reads them to the host)."""
    info = optimizer.diagnostics()

    def host(x):
        return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)

    values = {"neat_mean_alignment": float(host(info["mean_alignment"])),
              "neat_skipped_steps": float(host(info["skipped_steps"]))}
    for key, label in (("step_scale", "step_scale"), ("kappa", "conflict"), ("alignment", "alignment")):
        for name, value in zip(info["player_names"], host(info[key])):
            values[f"neat_{label}/{name}"] = float(value)
    return values


class _TensorBoardScalars:
    """Scalar summaries through ``tensorboard``'s own event writer (no TensorFlow needed)."""

    def __init__(self, log_dir):
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._event, self._summary = event_pb2.Event, summary_pb2.Summary
        self._file = EventFileWriter(str(log_dir))

    def __call__(self, values: dict, step: int) -> None:
        summary = self._summary(value=[self._summary.Value(tag=tag, simple_value=value)
                                       for tag, value in values.items()])
        self._file.add_event(self._event(wall_time=time.time(), step=int(step), summary=summary))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _event_writer(log_dir):
    try:
        return _TensorBoardScalars(log_dir)
    except ImportError as error:
        warnings.warn(f"NEATDiagnostics: not writing TensorBoard summaries to {log_dir!r} because the "
                      f"'tensorboard' package is missing ({error}); `pip install tensorboard` to enable them. "
                      "The diagnostics still go into `logs`.", stacklevel=3)
        return None

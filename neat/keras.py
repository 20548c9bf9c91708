"""Keras 3 front end: ``neat.keras.NGAdam`` for ``model.compile`` and the ``NEATDiagnostics`` callback.

Every step goes through the core (:func:`neat.functional.step`) on the Keras
backend's own tensors (torch tensors, JAX arrays or tracers). The optimizer
state lives in Keras variables, so Keras tracks it, ``stateless_apply`` (the JAX
trainer's jitted step) threads it, and ``model.save`` / ``load_model`` restore it.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import time
import warnings

import keras
import numpy as np

from neat import functional
from neat.adapters import keras_adapter
from neat.config import DEFAULTS, NGAdamConfig
from neat.state import NGAdamState

_CALLER_DEPTH = 8  # how far up the call stack ``build`` looks for the model being trained


@keras.saving.register_keras_serializable(package="neat")
class NGAdam(keras.optimizers.Optimizer):
    """NG-Adam (SPEC.md, spec v1) as a Keras optimizer.

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
    functional or Sequential model, else the chain.

    NEAT's step count ``t`` does not advance on a skipped (non-finite) step;
    ``optimizer.iterations``, which drives learning-rate schedules, counts every call.
    """

    def __init__(self, learning_rate=DEFAULTS["lr"], beta_1=DEFAULTS["betas"][0], beta_2=DEFAULTS["betas"][1],
                 epsilon=DEFAULTS["eps"], weight_decay=DEFAULTS["weight_decay"], gamma=DEFAULTS["gamma"],
                 zeta=DEFAULTS["zeta"], mu=DEFAULTS["mu"], step_bounds=DEFAULTS["step_bounds"],
                 leak=DEFAULTS["leak"], players=None, graph=None, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.neat_config = NGAdamConfig(
            lr=learning_rate if isinstance(learning_rate, float) else DEFAULTS["lr"],
            betas=(beta_1, beta_2), eps=epsilon, weight_decay=0.0 if weight_decay is None else weight_decay,
            gamma=gamma, zeta=zeta, mu=mu, step_bounds=step_bounds, leak=leak)
        self.players = None if players is None else [[int(k) for k in group] for group in players]
        self.graph = _graph_to_config(graph)
        self.player_names: list[str] = []
        self._step_fn = None

    # ------------------------------------------------------------------ state
    def build(self, variables):
        """Create the state variables (SPEC "State") and fix players and graph."""
        if self.built:
            return
        super().build(variables)
        tensors = [v for v in variables if not self._overwrite_variable_with_gradient(v)]
        players, graph, self.player_names = self._players_and_graph(tensors)
        fresh = functional.init_state([v.value for v in tensors], players, graph, mu=self.neat_config.mu)
        self._membership, self._smoothing = fresh.membership, fresh.smoothing
        self._tensor_keys = [self._var_key(v) for v in tensors]

        def like(array, name):
            return self.add_variable(tuple(array.shape), dtype=keras.backend.standardize_dtype(array.dtype),
                                     name=name)

        self._count = like(fresh.count, "neat_count")
        self._skipped = like(fresh.skipped, "neat_skipped")
        self._log_step = like(fresh.log_step, "neat_log_step")
        self._alignment = like(fresh.alignment, "neat_alignment")
        self._conflict = like(fresh.conflict, "neat_conflict")
        names = [v.path.replace("/", "_") for v in tensors]
        self._exp_avg = [like(m, f"{n}_exp_avg") for m, n in zip(fresh.exp_avg, names)]
        self._exp_avg_sq = [like(v, f"{n}_exp_avg_sq") for v, n in zip(fresh.exp_avg_sq, names)]

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

    @property
    def _tensors(self) -> list:
        """The model variables NEAT steps (not stored as an attribute: Keras would track them as ours)."""
        return [v for v in self._trainable_variables if not self._overwrite_variable_with_gradient(v)]

    def _state(self) -> NGAdamState:
        """The core's state, rebuilt from the variables' current (possibly traced) values."""
        return NGAdamState(
            count=self._count.value, skipped=self._skipped.value, log_step=self._log_step.value,
            alignment=self._alignment.value, conflict=self._conflict.value,
            exp_avg=[m.value for m in self._exp_avg], exp_avg_sq=[v.value for v in self._exp_avg_sq],
            membership=self._membership, smoothing=self._smoothing)

    def _assign_state(self, state: NGAdamState) -> None:
        for variable, value in [(self._count, state.count), (self._skipped, state.skipped),
                                (self._log_step, state.log_step), (self._alignment, state.alignment),
                                (self._conflict, state.conflict), *zip(self._exp_avg, state.exp_avg),
                                *zip(self._exp_avg_sq, state.exp_avg_sq)]:
            self.assign(variable, value)

    # ------------------------------------------------------------------- step
    def _apply_weight_decay(self, variables):
        """No-op: NEAT decays inside its step (SPEC step 9), so a skipped step does not decay."""

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        """One SPEC step on all tensors at once (Keras calls this once per ``apply``)."""
        position = {self._var_key(v): i for i, v in enumerate(trainable_variables)}
        missing = [v.path for v, key in zip(self._tensors, self._tensor_keys) if key not in position]
        if missing:
            raise ValueError(f"NGAdam steps all its variables together, but got no gradient for {missing}; "
                             "make every trainable variable reach the loss, or build the optimizer on fewer")
        order = [position[key] for key in self._tensor_keys]
        with _no_grad():
            values = [v.value for v in self._tensors]
            grads = [keras.ops.cast(grads[i], v.dtype) for i, v in zip(order, self._tensors)]
            new_values, new_state = self._core_step()(values, grads, self._state(),
                                                      lr=keras.ops.convert_to_tensor(learning_rate))
            for variable, value in zip(self._tensors, new_values):
                self.assign(variable, value)
            self._assign_state(new_state)

    def _core_step(self):
        """:func:`neat.functional.step` with this optimizer's config; on JAX compiled once
        (one dispatch for an eager ``apply``; inlined into the trainer's own jit)."""
        if self._step_fn is None:
            step = functools.partial(functional.step, config=self.neat_config, weight_decay=self._weight_decays())
            self._step_fn = _jax_jit(step) if keras.config.backend() == "jax" else step
        return self._step_fn

    def _weight_decays(self):
        """ω per tensor (0 where excluded by ``exclude_from_weight_decay``), or one ω for all."""
        decay = self.neat_config.weight_decay
        decays = [decay if self._use_weight_decay(v) else 0.0 for v in self._tensors]
        return decay if len(set(decays)) <= 1 else decays

    # ------------------------------------------------------------ read & save
    def diagnostics(self) -> dict:
        """Per-player ``alignment``, ``kappa``, ``step_scale`` and global ``mean_alignment``,
        ``skipped_steps`` (SPEC "Diagnostics") as backend tensors; ``player_names`` labels the players."""
        if not self.built:
            raise ValueError("NGAdam has no diagnostics before it is built (call fit or apply first)")
        return {**functional.diagnostics(self._state()), "player_names": list(self.player_names)}

    def get_config(self):
        config = super().get_config()
        beta_1, beta_2 = self.neat_config.betas
        config.update(beta_1=beta_1, beta_2=beta_2, epsilon=self.neat_config.eps, gamma=self.neat_config.gamma,
                      zeta=self.neat_config.zeta, mu=self.neat_config.mu,
                      step_bounds=list(self.neat_config.step_bounds), leak=self.neat_config.leak,
                      players=self.players, graph=self.graph)
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


def _no_grad():
    """No autograd tape around the step on the torch backend."""
    if keras.config.backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


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

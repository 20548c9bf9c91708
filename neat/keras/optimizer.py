"""The optimizer of the Keras 3 front end: ``neat.keras.NGAdam`` for ``model.compile``.

Every step is :func:`neat.functional.step` on the Keras backend's own tensors
(torch tensors, JAX arrays or tracers), with the kernels that
:func:`neat.kernel_selection.select_kernels` picks for them. The optimizer state
lives in Keras variables (the fields of :class:`neat.state.GameState`, then
``m`` and ``v`` per tensor), so Keras tracks it, ``stateless_apply`` (the JAX
trainer's jitted step) threads it, and ``model.save`` / ``load_model`` restore it.
Keras is imported after ``neat/keras/__init__.py`` has chosen its backend.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import array_api_compat
import keras
import numpy as np

from neat import arrays, checkpoint, functional
from neat.config import DEFAULTS, NGAdamConfig
from neat.keras.layouts import bound_model_layout, path_layout
from neat.kernel_selection import select_kernels
from neat.kernels import StepKernels
from neat.state import GameState, NGAdamState
from neat.topology import GameTables, Topology

#: ``keras.optimizers.AdamW``'s defaults (Keras 3), which ``NGAdam`` shares.
KERAS_ADAMW_DEFAULTS = dict(learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7)


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
    decays: Any  # (K,) 1.0 where ``exclude_from_weight_decay`` keeps ω, else 0.0 (statistics dtype)
    step: Callable[..., Any]  # (params, grads, state, lr, weight_decay) → (params, state); jitted on JAX
    no_grad: Callable[[], Any]  # a context without autograd tape (torch) or a null context


@keras.saving.register_keras_serializable(package="neat")
class NGAdam(keras.optimizers.Optimizer):
    """NG-Adam (docs/spec.md, spec v2) as a Keras optimizer.

    Arguments, defaults and argument errors follow ``keras.optimizers.AdamW``
    (``learning_rate=0.001``, ``weight_decay=0.004``, ``beta_1=0.9``,
    ``beta_2=0.999``, ``epsilon=1e-7``; ``learning_rate`` may be a schedule or a
    callable; ``weight_decay`` is decoupled, SPEC step 9, read whenever the step
    runs (so ``optimizer.weight_decay = …`` takes effect; a compiled train
    function reads it when traced, as for AdamW) and honours
    ``exclude_from_weight_decay``; ``clipnorm``, ``global_clipnorm``,
    ``clipvalue``, ``use_ema``, ``gradient_accumulation_steps`` and
    ``loss_scale_factor`` work as in every Keras optimizer). With ``gamma=0`` and
    ``zeta=0`` it is AdamW, with one difference: ``epsilon`` is SPEC's ε, added
    after the square root of the bias-corrected ``v`` as in ``torch.optim.AdamW``;
    Keras' Adam adds ``ε·√(1 − β2^t)`` instead (the same at ``epsilon=0``).
    ``amsgrad`` is a config field as in AdamW (stored, in ``get_config``, restored by
    ``from_config``), but SPEC v2 has no AMSGrad: an optimizer with ``amsgrad=True`` raises
    ``NotImplementedError`` when it is built (``fit``, ``apply`` or ``build``), before it creates
    any state or touches a variable.

    NEAT's hyperparameters: ``gamma`` (γ, NGE strength), ``zeta`` (ζ, NSA rate),
    ``mu`` (μ, graph coupling), ``step_bounds`` (λmin, λmax), ``leak`` (ρ).

    Players and graph: ``model=`` (or :meth:`bind`) gives one player per layer
    that owns trainable weights and the layer connectivity of a functional or
    ``Sequential`` model as the graph (a subclassed model: the chain). Without a
    bound model the players are the variables' owning paths and the graph is the
    chain, with a warning. ``players`` (lists of indices into the variables the
    optimizer is built with) and ``graph`` (an ``n × n`` weight matrix or
    ``(i, j, weight)`` edges) set them explicitly. Once built, the resolved
    players, graph and ``player_names`` are in ``get_config``, so ``from_config``
    and ``load_model`` restore them without the model. Growing the game (SPEC "Growing the
    game"): Keras builds an optimizer once, for the variables trainable at its first step, and
    refuses other variables later (its "Unknown variable" error); after unfreezing layers, compile
    with a new ``NGAdam`` (Keras' fine-tuning recipe), whose game starts afresh.
    ``kernels``: ``None`` (the fastest registered kernel set for the variables'
    arrays) or a registered name such as ``"generic"``.

    Checkpoint (:mod:`neat.checkpoint`): once built, ``get_config()["neat"]`` holds the
    checkpoint's settings (spec version, hyperparameters, ``player_of``, graph). ``neat`` (given
    by ``from_config``) is such an entry: when the optimizer is built, its spec version, players,
    graph and game hyperparameters must be this optimizer's. The ``GameState`` fields and the
    moments are optimizer variables; :meth:`load_own_variables` checks them before it assigns any.

    Moment variables carry their variable's ``layout`` (sharded like it under
    ``keras.distribution``). A variable Keras passes no gradient for (unused by
    the loss on the torch backend) is inactive in that step: the game is played
    by the other players (SPEC v2). NEAT's step count ``t`` does not advance on a
    skipped (non-finite) step; ``optimizer.iterations``, which drives
    learning-rate schedules, counts every call.
    """

    __module__ = "neat.keras"  # its public home, which Keras writes into saved configs ("module")

    def __init__(
        self,
        learning_rate=KERAS_ADAMW_DEFAULTS["learning_rate"],
        weight_decay=KERAS_ADAMW_DEFAULTS["weight_decay"],
        beta_1=KERAS_ADAMW_DEFAULTS["beta_1"],
        beta_2=KERAS_ADAMW_DEFAULTS["beta_2"],
        epsilon=KERAS_ADAMW_DEFAULTS["epsilon"],
        amsgrad=False,
        gamma=DEFAULTS["gamma"],
        zeta=DEFAULTS["zeta"],
        mu=DEFAULTS["mu"],
        step_bounds=DEFAULTS["step_bounds"],
        leak=DEFAULTS["leak"],
        players=None,
        graph=None,
        player_names=None,
        kernels=None,
        model=None,
        neat=None,
        name=None,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        if weight_decay is None:  # AdamW's own check and message
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
        self.amsgrad = amsgrad  # a config field only: refused when the optimizer is built
        lr, betas = self._configured_learning_rate(), (beta_1, beta_2)
        self.neat_config = NGAdamConfig(lr, betas, epsilon, weight_decay, gamma, zeta, mu, step_bounds, leak)
        if kernels is not None and not isinstance(kernels, str):
            raise TypeError(f"kernels must be None or the name of a registered kernel set, got {kernels!r}")
        self.kernels = kernels
        self.players = None if players is None else [[int(k) for k in group] for group in players]
        self.graph = _graph_to_config(graph)
        self.player_names: list[str] = [] if player_names is None else [str(n) for n in player_names]
        if self.player_names and len(self.player_names) != len(self.players or ()):
            raise ValueError(f"player_names: got {len(self.player_names)} names for {len(self.players or ())} players")
        self._model = None
        self._restored_settings = neat
        if model is not None:
            self.bind(model)

    def _configured_learning_rate(self) -> float:
        """The learning rate of :attr:`neat_config` (and the checkpoint): a number as Keras keeps it
        (its float32 variable, so that it equals ``get_config()["learning_rate"]``); for a schedule
        or a callable, read at every step, the default."""
        if isinstance(self._learning_rate, keras.Variable):
            return float(keras.ops.convert_to_numpy(self._learning_rate))
        return DEFAULTS["lr"]

    def bind(self, model) -> NGAdam:
        """Take players and graph from ``model`` (a ``keras.Model``) when the optimizer is built.
        Returns the optimizer: ``model.compile(optimizer=NGAdam(...).bind(model))``. Explicit
        ``players`` win; the model is held by a weak reference and never saved."""
        if not isinstance(model, keras.Model):
            raise TypeError(f"bind needs a keras.Model, got {type(model).__qualname__}")
        if self.built:
            raise ValueError("bind the model before the optimizer is built (before fit, apply or build)")
        self._model = weakref.ref(model)
        return self

    # ------------------------------------------------------------------ state
    def build(self, variables):
        """Fix players and graph, pick the kernels and create the state variables (SPEC "State").
        Refuses ``amsgrad=True`` and restored settings that do not fit (``neat=``) before any change."""
        if self.built:
            return
        if self.amsgrad:
            raise NotImplementedError(
                "NGAdam(amsgrad=True): AMSGrad is not part of SPEC v2 (docs/spec.md); "
                "NG-Adam keeps the plain second moment v"
            )
        tensors = [v for v in variables if not self._overwrite_variable_with_gradient(v)]
        players, graph, player_names = self._players_and_graph(tensors)
        topology = Topology.build(len(tensors), players, graph, mu=self.neat_config.mu)
        if self._restored_settings is not None:
            checkpoint.checked_settings(
                self._restored_settings,
                self.neat_config,
                topology,
                fixed=checkpoint.FIXED_FOR_A_RUN,
                name="the optimizer config's 'neat' entry",
            )
        super().build(variables)
        values = [v.value for v in tensors]
        fresh = functional.init_state([keras.ops.zeros((), dtype=v.dtype) for v in tensors], topology)
        kernels = select_kernels(arrays.namespace_of(values, "variables"), values, self.kernels)
        self.players, self.graph, self.player_names = players, _graph_to_config(graph), list(player_names)
        inplace = keras.config.backend() == "torch"
        decays = self._decay_mask(tensors, fresh.game.log_step)
        self._plan = _Plan(
            tuple(tensors),
            tuple(self._var_key(v) for v in tensors),
            topology,
            fresh.tables,
            kernels,
            inplace,
            decays,
            self._bound_step(kernels, topology, inplace, decays),
            _no_grad_context(),
        )
        self._game = GameState(
            *(self._state_variable(value, f"neat_{field}") for field, value in zip(GameState._fields, fresh.game))
        )
        names = [v.path.replace("/", "_") for v in tensors]
        self._exp_avg = [
            self._state_variable(m, f"{n}_exp_avg", like=t) for m, n, t in zip(fresh.exp_avg, names, tensors)
        ]
        self._exp_avg_sq = [
            self._state_variable(v, f"{n}_exp_avg_sq", like=t) for v, n, t in zip(fresh.exp_avg_sq, names, tensors)
        ]

    def _state_variable(self, value, name: str, like=None):
        """An optimizer variable holding ``value``; with ``like`` (a model variable), ``value`` is the
        0-d initial value of a moment, filled to ``like``'s shape and sharded by ``like``'s layout.

        The state is initialised on 0-d stand-ins of the variables (:func:`neat.functional.init_state`
        gives the small state, the moments' dtypes and initial values): under ``keras.distribution`` a
        moment is created sharded (never whole on one device), and the small state stays replicated."""
        dtype = keras.backend.standardize_dtype(value.dtype)
        if like is None:
            variable = self.add_variable(tuple(value.shape), dtype=dtype, name=name)
            variable.assign(value)
            return variable

        def fill(shape, dtype=None):
            return keras.ops.full(shape, value, dtype=dtype)

        return self.add_variable(tuple(like.shape), initializer=fill, dtype=dtype, layout=_layout_of(like), name=name)

    def _players_and_graph(self, tensors):
        """Explicit (or restored) players, else the layers of the bound model, else the variables'
        owning paths with a chain graph, and a warning that says how to bind the model."""
        if self.players is not None:
            names = self.player_names or [f"player_{i}" for i in range(len(self.players))]
            return self.players, _graph_from_config(self.graph), names
        model = None if self._model is None else self._model()
        if model is not None:
            layout = bound_model_layout(model, tensors)
        else:
            warnings.warn(
                "NGAdam has no model bound: its players are the variables' owning paths (one per "
                "layer path, or per variable for standalone variables) and its player graph is a "
                "chain, not the model's layers and connectivity. Bind the model with "
                "NGAdam(..., model=model) or optimizer.bind(model) before fit, or pass players=.",
                UserWarning,
                stacklevel=4,
            )
            layout = path_layout(tensors)
        graph = layout.graph if self.graph is None else _graph_from_config(self.graph)
        return layout.players, graph, list(layout.player_names)

    def _decay_mask(self, tensors, like):
        """1 per tensor, 0 where ``exclude_from_weight_decay`` excludes it (SPEC step 9): a ``(K,)``
        array like ``like``, fixed once built (Keras allows exclusions only before ``build``)."""
        xp = array_api_compat.array_namespace(like)
        return xp.asarray(
            [1.0 if self._use_weight_decay(v) else 0.0 for v in tensors],
            dtype=like.dtype,
            device=array_api_compat.device(like),
        )

    def _bound_step(self, kernels, topology, inplace: bool, decays):
        """:func:`neat.functional.step` with everything but the arrays, ``lr`` and ``ω`` bound;
        tensor ``k`` decays by ``ω·decays[k]``. On JAX it is jitted (one dispatch for an eager
        ``apply``, inlined into the trainer's jitted step)."""
        config = self.neat_config

        def step(params, grads, state, lr, weight_decay):
            return functional.step(
                params,
                grads,
                state,
                config,
                lr=lr,
                weight_decay=decays * weight_decay,
                kernels=kernels,
                topology=topology,
                inplace=inplace,
            )

        return _jax_jit(step) if keras.config.backend() == "jax" else step

    def _state(self) -> NGAdamState:
        """The core's state, from the variables' current (possibly traced) values."""
        return NGAdamState(
            GameState(*(v.value for v in self._game)),
            [m.value for m in self._exp_avg],
            [v.value for v in self._exp_avg_sq],
            self._plan.tables,
        )

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
        without a gradient here (Keras filtered it out) is inactive in this step. ``ω`` is
        ``self.weight_decay`` as it is now (``None``: 0)."""
        plan = self._plan
        given = dict(zip(map(self._var_key, trainable_variables), grads))
        grads = [given.get(key) for key in plan.keys]
        weight_decay = keras.ops.convert_to_tensor(
            0.0 if self.weight_decay is None else self.weight_decay,
            dtype=keras.backend.standardize_dtype(plan.decays.dtype),
        )
        with plan.no_grad():
            params, state = [v.value for v in plan.tensors], self._state()
            new_params, new_state = plan.step(
                params, grads, state, keras.ops.convert_to_tensor(learning_rate), weight_decay
            )
            for variables, old, new in (
                (plan.tensors, params, new_params),
                (self._game, state.game, new_state.game),
                (self._exp_avg, state.exp_avg, new_state.exp_avg),
                (self._exp_avg_sq, state.exp_avg_sq, new_state.exp_avg_sq),
            ):
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

    def load_own_variables(self, store):
        """Keras' restore of the optimizer variables, after :func:`neat.checkpoint.checked_state` has
        checked the saved ``GameState`` fields and moments: a bad checkpoint raises ``ValueError``
        before any variable changes. A store with another number of variables is Keras' case (a
        warning, nothing loaded)."""
        if self.built and len(store.keys()) == len(self.variables):
            position = {id(variable): str(i) for i, variable in enumerate(self.variables)}

            def saved(variables):
                return [store[position[id(variable)]] for variable in variables]

            checkpoint.checked_state(
                dict(zip(GameState._fields, saved(self._game))),
                list(zip(saved(self._exp_avg), saved(self._exp_avg_sq))),
                self._plan.topology,
                [tuple(v.shape) for v in self._plan.tensors],
                name="the saved optimizer variables",
            )
        super().load_own_variables(store)

    def get_config(self):
        """Keras' optimizer config, AdamW's arguments and NEAT's; once built, ``players``, ``graph``
        and ``player_names`` are the resolved ones (from the bound model or the variables), and
        ``neat`` the checkpoint's settings (:func:`neat.checkpoint.settings`, arrays as lists)."""
        config = super().get_config()
        beta_1, beta_2 = self.neat_config.betas
        config.update(
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=self.neat_config.eps,
            amsgrad=self.amsgrad,
            gamma=self.neat_config.gamma,
            zeta=self.neat_config.zeta,
            mu=self.neat_config.mu,
            step_bounds=list(self.neat_config.step_bounds),
            leak=self.neat_config.leak,
            players=None if self.players is None else [list(group) for group in self.players],
            graph=self.graph,
            player_names=list(self.player_names) or None,
            kernels=self.kernels,
            neat=(
                checkpoint.settings(self.neat_config, self._plan.topology, convert=np.ndarray.tolist)
                if self.built
                else self._restored_settings
            ),
        )
        return config


def _layout_of(variable):
    """The variable's sharding layout (``None`` without ``keras.distribution``), as Keras'
    ``add_variable_from_reference`` reads it."""
    return getattr(variable, "_layout", None)


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


def _jax_jit(fn):
    import jax

    return jax.jit(fn)


def _no_grad_context():
    """The context that keeps the step off the autograd tape: ``torch.no_grad`` on the torch backend."""
    if keras.config.backend() == "torch":
        import torch

        return torch.no_grad
    return contextlib.nullcontext

"""NG-Adam for optax: ``neat.optax.ng_adam(learning_rate, ...)``, a drop-in for ``optax.adamw``, and
``neat.optax.scale_by_ng_adam(...)``, its direction for ``optax.chain``.

The math is the core's (:func:`neat.functional.step`, docs/spec.md steps 0–9) on the
parameter pytree's leaves. ``ng_adam``'s ``update(grads, state, params)`` returns
``updates = new_params − params`` (in the parameters' dtype), so that
``optax.apply_updates(params, updates)`` gives the new parameters. Rounding: when
``θ_new`` and ``θ`` are within a factor 2 of each other, ``θ_new − θ`` is exact
(Sterbenz) and ``θ + (θ_new − θ)`` is exactly the core's ``θ_new``; otherwise (a
parameter near 0 or changing sign) the subtraction and the addition each round once,
so the result is within about one ulp (float32: ~6e-8 relative) of the core's.

The optax contract (``optax/_src/alias_test.py``'s ``AliasTest`` runs on ``ng_adam``: see
``tests/jax/test_optax_alias.py``):

* ``learning_rate`` and ``weight_decay``: floats, 0-d arrays or optax schedules; a schedule is
  evaluated at the state's step count ``t`` (steps taken so far), which skipped (non-finite)
  steps do not advance (SPEC step 0). Defaults, argument order and ``mask`` are ``optax.adamw``'s;
  ``eps_root`` exists for that signature and must be 0 (SPEC step 9 has ``ε`` only).
* ``update`` accepts and ignores extra keyword arguments (``GradientTransformationExtraArgs``).
* Every numeric hyperparameter may be a 0-d array or a tracer, so ``optax.inject_hyperparams``
  works; ``μ`` too: a Python number ``μ`` gives ``S`` on the host once (SPEC "Objects"), an
  array ``μ`` gives ``S = solve(I + μL, I)`` inside every step (SPEC: "then ``S`` is computed from
  the traced ``μ`` inside the step"), as dense ``n × n`` rows of the state's tables.
* Complex leaves are their real and imaginary parts (SPEC "Objects"); a complex gradient is the
  conjugated JAX gradient, as optax takes it (``optax.tree.conj``). Their moments are stored as
  complex arrays of the parameter's shape (real part: the real component's moment, imaginary
  part: the imaginary component's), so the moments are pytrees like the parameters
  (``optax.tree.map_params`` finds them).
* An empty pytree is a valid parameter set (the step only counts).
* A gradient leaf may be ``None`` (a parameter without a gradient this step): that leaf is
  left as it is (update 0) and the step is the sub-game of the active players (SPEC v2);
  under ``jit`` each pattern of ``None`` leaves is its own compilation.
* Growing the game (SPEC "Growing the game"): ``init`` fixes the pytree for a run. Layers to be
  unfrozen later stay in the pytree from the start with ``None`` gradient leaves (they sit out
  with zero moments and counts until their first gradient); a pytree with new leaves needs
  ``init`` again (a fresh game). The core grows a game with :meth:`neat.topology.Topology.grown`
  and :func:`neat.functional.grown_state`.
* Players: by default one per parent path of a leaf (``params['Dense_0']``), joined in a chain
  in pytree order; see :func:`neat.adapters.optax_adapter.pytree_layout`.

The state (:class:`NGAdamOptaxState`): the core's :class:`~neat.state.GameState`, the moments
as pytrees like the parameters and the :class:`~neat.topology.GameTables` of the game, all
arrays (jit-, pickle- and orbax-friendly). The tables are state leaves rather than constants of
the jitted step: a checkpoint then carries the game it was trained in. The moments are
``zeros_like`` the parameters, so they take the parameters' sharding (eagerly, or under ``jit``
with Explicit mesh axes; with Auto axes under ``jit`` give ``out_shardings`` as for any optax
state); the small arrays are replicated on the parameters' devices. ``update`` returns a state
of exactly ``init``'s avals (shapes, dtypes, weak types) and shardings, so a jitted step
compiles once.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from neat import arrays, functional, hyperparameters
from neat.adapters.optax_adapter import pytree_layout
from neat.config import DEFAULTS, NGAdamConfig, StepHyperparameters
from neat.kernel_selection import KernelPlan, select_plan
from neat.state import GameState, NGAdamState
from neat.topology import GameTables, Topology

__all__ = ["NGAdamOptaxState", "ng_adam", "scale_by_ng_adam"]


class NGAdamOptaxState(NGAdamState):
    """The core's :class:`~neat.state.NGAdamState` (game state, moments, tables) with the moments
    ``m, v`` as pytrees like the parameters (complex for complex parameters), so that optax's tree
    utilities find them; :func:`neat.functional.diagnostics` reads it as the core's."""

    __slots__ = ()

    @property
    def num_tensors(self) -> int:
        return len(jax.tree.leaves(self.exp_avg))


def ng_adam(
    learning_rate: optax.ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    *,
    weight_decay: optax.ScalarOrSchedule = 1e-4,
    mask: Any = None,
    gamma: float = DEFAULTS["gamma"],
    zeta: float = DEFAULTS["zeta"],
    mu: float = DEFAULTS["mu"],
    step_bounds: tuple[float, float] = DEFAULTS["step_bounds"],
    leak: float = DEFAULTS["leak"],
    players: Callable | list | None = None,
    graph: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """NG-Adam (docs/spec.md) as an optax transformation; ``optax.adamw`` when ``gamma = zeta = 0``.

    ``weight_decay`` is decoupled (SPEC step 9: ``θ ← θ(1 − ηω)``); ``mask``, as ``optax.adamw``'s:
    a pytree of bools like the parameters (or a prefix of them), or a function of the parameters
    returning one; ``False`` leaves are not decayed. ``players``: ``None`` (one player per module
    subtree), a function from a leaf's key path to a player name, or lists of leaf indices in
    pytree order. ``graph``: the player graph (``n × n`` weights or ``(i, j, w)`` edges; ``None``:
    a chain). Under ``optax.inject_hyperparams``, name a ``players`` or ``mask`` function in
    ``static_args`` (optax would take it for a schedule). Values injected after ``init`` are used
    as given, without validation.
    """
    direction = _direction_hyperparameters(
        eps_root, b1=b1, b2=b2, eps=eps, gamma=gamma, zeta=zeta, mu=mu, step_bounds=step_bounds, leak=leak
    )
    game = _Game(dict(direction, lr=learning_rate, weight_decay=weight_decay), players, graph)

    def update_fn(updates, state: NGAdamOptaxState, params=None, **extra_args):
        del extra_args  # optax: a transformation ignores the extra arguments it does not use
        if params is None:
            raise ValueError("neat.optax.ng_adam needs the parameters: call update(grads, state, params)")
        count = state.game.count
        lr = learning_rate(count) if callable(learning_rate) else learning_rate
        decay = weight_decay(count) if callable(weight_decay) else weight_decay
        new_params, state = game.step(params, updates, state, lr=lr, weight_decay=_masked(decay, mask, params))
        return jax.tree.map(lambda new, old: new - old, new_params, params), state

    return NGAdamTransformation(game.init, update_fn, game)


def scale_by_ng_adam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    *,
    gamma: float = DEFAULTS["gamma"],
    zeta: float = DEFAULTS["zeta"],
    mu: float = DEFAULTS["mu"],
    step_bounds: tuple[float, float] = DEFAULTS["step_bounds"],
    leak: float = DEFAULTS["leak"],
    players: Callable | list | None = None,
    graph: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """The NG-Adam direction ``λ_{P(k)} · m̂_k / (√v̂_k + ε)`` (SPEC steps 0–8 and 9 without ``η``
    and ``ω``), as ``optax.scale_by_adam`` gives Adam's. Then
    ``optax.chain(scale_by_ng_adam(...), optax.add_decayed_weights(ω), optax.scale_by_learning_rate(η))``
    is :func:`ng_adam` up to rounding: ``θ − η(λ·d + ωθ) = θ(1 − ηω) − ηλ·d``. (A learning-rate
    schedule there counts every step, skipped ones too; :func:`ng_adam`'s counts the steps taken.)

    The direction is the core's step from the origin (``θ = 0, η = 1, ω = 0``), negated: exactly
    ``λ·d`` in the gradients' dtype. ``update`` needs no parameters; a ``None`` gradient leaf gives
    a ``None`` update (an inactive tensor, SPEC v2)."""
    direction = _direction_hyperparameters(
        eps_root, b1=b1, b2=b2, eps=eps, gamma=gamma, zeta=zeta, mu=mu, step_bounds=step_bounds, leak=leak
    )
    game = _Game(dict(direction, lr=DEFAULTS["lr"], weight_decay=0.0), players, graph)

    def update_fn(updates, state: NGAdamOptaxState, params=None, **extra_args):
        del params, extra_args

        def origin(grad, moment):
            return jnp.zeros_like(moment if grad is None else grad)

        start = jax.tree.map(origin, updates, state.exp_avg, is_leaf=_is_none)
        moved, state = game.step(start, updates, state, lr=1.0, weight_decay=0.0)
        return jax.tree.map(lambda grad, x: None if grad is None else -x, updates, moved, is_leaf=_is_none), state

    return NGAdamTransformation(game.init, update_fn, game)


def _direction_hyperparameters(eps_root, **optax_values) -> dict:
    """The hyperparameters of NG-Adam's direction (all but ``lr`` and ``weight_decay``), by the core's
    names (:func:`neat.hyperparameters.core_values`), and optax's ``eps_root``."""
    return dict(hyperparameters.core_values("optax", optax_values), eps_root=eps_root)


class NGAdamTransformation(optax.GradientTransformationExtraArgs):
    """What :func:`ng_adam` and :func:`scale_by_ng_adam` return: an optax transformation (``init``,
    ``update``) that also says which kernels its steps run (``repr``, :meth:`kernel_plan`)."""

    def __new__(cls, init, update, game: _Game):
        transformation = super().__new__(cls, init, update)
        transformation.__dict__["_game"] = game
        return transformation

    def __getnewargs__(self):  # copies and pickles rebuild it with its game
        return (*self, self._game)

    def kernel_plan(self, params) -> KernelPlan:
        """The :class:`~neat.kernel_selection.KernelPlan` of a step over the pytree ``params``."""
        return self._game.plan([_real(p) for p in _floating_leaves(params)])

    def __repr__(self) -> str:
        plans = "; ".join(f"{', '.join(dtypes)}: {plan}" for dtypes, plan in self._game.plans.items())
        return f"neat.optax NG-Adam transformation (kernel plans: {plans or 'chosen at the first update'})"


class _Game:
    """What :func:`ng_adam` and :func:`scale_by_ng_adam` share: the hyperparameters, the game of a
    parameter pytree (:class:`Topology`, one per pytree structure), ``init`` and the core's step."""

    def __init__(self, hyper: dict, players, graph):
        self.hyper, self.players, self.graph = hyper, players, graph
        self.static_mu = isinstance(hyper["mu"], numbers.Real)
        python_numbers = all(isinstance(v, numbers.Real) for v in jax.tree.leaves(_validatable(hyper)))
        self.config = _validated(hyper) if python_numbers else _traced_hyperparameters(hyper)
        self.validate_at_init = not python_numbers
        self.topologies: dict = {}
        self.plans: dict = {}  # {leaf dtypes: the KernelPlan of their steps}

    def topology(self, params) -> Topology:
        """Players, graph and (for a Python number ``μ``) ``S`` of ``params``, built once per structure.
        With an array ``μ`` the host tables are built with ``μ = 0`` for their player tables only:
        :meth:`tables` puts the ``S`` of the traced ``μ`` in them."""
        treedef = jax.tree.structure(params)
        if treedef not in self.topologies:
            layout = pytree_layout(params, self.players)
            mu = self.hyper["mu"] if self.static_mu else 0.0
            self.topologies[treedef] = Topology.build(len(layout.tensors), layout.players, self.graph, mu=mu)
        return self.topologies[treedef]

    def plan(self, leaves) -> KernelPlan:
        """The kernels of a step over ``leaves`` (chosen by :func:`neat.kernel_selection.select_plan`,
        cached per signature there), recorded under their dtypes for ``repr``."""
        plan = select_plan(jnp, leaves)
        self.plans[tuple(sorted({str(leaf.dtype) for leaf in leaves}))] = plan
        return plan

    def tables(self, topology: Topology, stats_dtype, placement) -> GameTables:
        """The game's tables; for an array ``μ``, ``S = solve(I + μL, I)`` in ``stats_dtype`` as
        dense rows (every player a neighbour), computed here: in the step when ``μ`` is traced."""
        tables = topology.tables(jnp, placement, stats_dtype)
        if self.static_mu:
            return tables
        n = topology.num_players
        identity = jnp.eye(n, dtype=stats_dtype)
        laplacian = jnp.asarray(topology.graph.laplacian(), dtype=stats_dtype)
        smoothing = jnp.linalg.solve(identity + jnp.asarray(self.hyper["mu"], stats_dtype) * laplacian, identity)
        neighbours = jnp.broadcast_to(jnp.arange(n, dtype=tables.neighbours.dtype), (n, n))
        dense = tables._replace(neighbours=neighbours, weights=smoothing)
        return dense if placement is None else jax.device_put(dense, placement)

    def init(self, params) -> NGAdamOptaxState:
        """The core's fresh state (SPEC "State") for ``params``, moments placed like their parameters,
        the game state and tables replicated on the parameters' devices."""
        leaves = _floating_leaves(params)
        exp_avg, exp_avg_sq = (jax.tree.map(_zero_moment, params) for _ in range(2))
        if not leaves:
            return NGAdamOptaxState(GameState.zeros(jnp, 0, 0, jnp.float32, None), exp_avg, exp_avg_sq, _empty_tables())
        if self.validate_at_init and not any(isinstance(v, jax.core.Tracer) for v in jax.tree.leaves(self.hyper)):
            _validated(self.hyper)  # arrays (inject_hyperparams), once, off the step
        topology = self.topology(params)
        stats_dtype = arrays.statistics_dtype(jnp, [_moment_dtype(p.dtype) for p in leaves])
        placement = _replicated(leaves[0])
        game = GameState.zeros(jnp, topology.num_tensors, topology.num_players, stats_dtype, placement)
        return NGAdamOptaxState(game, exp_avg, exp_avg_sq, self.tables(topology, stats_dtype, placement))

    def step(self, params, grads, state: NGAdamOptaxState, *, lr, weight_decay):
        """SPEC steps 0–9 on the pytree ``params`` (complex leaves as their real parts, ``None`` gradient
        leaves inactive): ``(new params, new state)``."""
        param_leaves, treedef = jax.tree.flatten(params)
        try:
            grad_leaves = treedef.flatten_up_to(grads)  # type: ignore[attr-defined]  # (missing from jax's stubs)
        except (ValueError, TypeError) as error:
            raise ValueError(f"neat.optax: the gradients' pytree does not match the parameters' ({error})") from None
        if not param_leaves:  # nothing to update: the step only counts (SPEC step 1)
            return params, state._replace(game=state.game._replace(count=state.game.count + 1))
        topology = self.topology(params)
        inactive = any(g is None for g in grad_leaves)
        if inactive and not self.static_mu:
            raise ValueError(
                "neat.optax: None gradient leaves (a sub-game) need a Python number mu; with "
                "optax.inject_hyperparams pass static_args=('mu',)"
            )
        tables = state.tables if self.static_mu else self.tables(topology, state.game.log_step.dtype, None)
        exp_avg, exp_avg_sq = (
            [_real(m) for m in treedef.flatten_up_to(tree)]  # type: ignore[attr-defined]
            for tree in (state.exp_avg, state.exp_avg_sq)
        )
        new_leaves, core = functional.step(
            [_real(p) for p in param_leaves],
            [None if g is None else _real(g) for g in grad_leaves],
            NGAdamState(state.game, exp_avg, exp_avg_sq, tables),
            self.config,
            lr=lr,
            weight_decay=weight_decay,
            topology=topology if inactive else None,
            kernels=self.plan([_real(p) for p in param_leaves]),
        )

        def tree_like_params(real_leaves):
            return jax.tree.unflatten(treedef, [_like(r, p) for r, p in zip(real_leaves, param_leaves)])

        return tree_like_params(new_leaves), NGAdamOptaxState(
            core.game, tree_like_params(core.exp_avg), tree_like_params(core.exp_avg_sq), core.tables
        )


def _is_none(node) -> bool:
    return node is None


def _floating_leaves(params) -> list:
    """The leaves of ``params``; ``TypeError`` naming the first one that is not a floating (real or
    complex) array, as the other front ends name a bad parameter."""
    with_paths, _ = jax.tree_util.tree_flatten_with_path(params)
    for path, leaf in with_paths:
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or not jnp.issubdtype(dtype, jnp.inexact):
            what = f"dtype {dtype}" if dtype is not None else f"type {type(leaf).__qualname__}"
            raise TypeError(
                f"neat.optax: params{jax.tree_util.keystr(path)} has {what}; "
                "NEAT optimizes floating (real or complex) arrays"
            )
    return [leaf for _, leaf in with_paths]


def _moment_dtype(dtype):
    """The dtype of a parameter's ``m`` and ``v`` (SPEC "State", per real component): float32 below
    32 bits, else the parameter's; complex of that for a complex parameter."""
    real = arrays.state_dtype(jnp, jnp.finfo(dtype).dtype)
    return jnp.promote_types(real, jnp.complex64) if jnp.issubdtype(dtype, jnp.complexfloating) else real


def _zero_moment(param):
    """Zeros like ``param`` in its moment dtype, committed to its sharding when it is committed
    (uncommitted like it otherwise): a jitted step's outputs are then committed exactly when its
    inputs were, so that the second step does not compile again. Under tracing, placed by the
    computation."""
    return jnp.zeros_like(param, dtype=_moment_dtype(param.dtype), device=_committed_sharding(param))


def _committed_sharding(leaf):
    """``leaf``'s sharding if it is a committed array, else ``None`` (uncommitted, or a tracer)."""
    return None if isinstance(leaf, jax.core.Tracer) or not leaf.committed else leaf.sharding


def _real(x):
    """A complex array as the real array of its real and imaginary parts, shape ``(..., 2)`` (as
    ``torch.view_as_real``; SPEC "Objects"); a real array as it is."""
    return jnp.stack([x.real, x.imag], axis=-1) if jnp.iscomplexobj(x) else x


def _like(real, original):
    """The inverse of :func:`_real` for an array that was like ``original``."""
    return jax.lax.complex(real[..., 0], real[..., 1]) if jnp.iscomplexobj(original) else real


def _masked(weight_decay, mask, params):
    """``ω`` as the core takes it: as it is without a ``mask``, else one value per leaf, 0 where the
    mask (``optax.adamw``'s: a pytree of bools, or a prefix of ``params``, or a function of ``params``
    returning one) is ``False``."""
    if mask is None:
        return weight_decay
    tree = mask(params) if callable(mask) else mask
    flags = jax.tree.leaves(jax.tree.map(lambda keep, sub: jax.tree.map(lambda _: bool(keep), sub), tree, params))
    return [weight_decay if keep else 0.0 for keep in flags]


def _empty_tables() -> GameTables:
    """The tables of a game without tensors or players (an empty parameter pytree)."""
    index = jnp.zeros((0, 0), jnp.int32)
    weights = jnp.zeros((0, 0), jnp.float32)
    return GameTables(
        owner=jnp.zeros((0,), jnp.int32), members=index, member_mask=weights, neighbours=index, weights=weights
    )


def _validatable(hyper: dict) -> dict:
    """The values checked against SPEC "Hyperparameters": schedules and traced learning rates or
    weight decays left out (checked by their values at each step, not at all)."""

    def concrete(value, default):
        return default if callable(value) or isinstance(value, jax.core.Tracer) else value

    return dict(
        hyper,
        lr=concrete(hyper["lr"], DEFAULTS["lr"]),
        weight_decay=concrete(hyper["weight_decay"], DEFAULTS["weight_decay"]),
    )


def _number(value):
    """A concrete scalar (Python number or 0-d array) as a float, for validation only."""
    return value if isinstance(value, numbers.Real) else float(value)


def _validated(hyper: dict) -> NGAdamConfig:
    """SPEC "Hyperparameters" checks on concrete values (raises ``ValueError`` naming the value)."""
    values = jax.tree.map(_number, _validatable(hyper))
    if values.pop("eps_root") != 0:
        raise ValueError(
            f"Invalid eps_root: {hyper['eps_root']!r} (must be 0: NG-Adam's direction is m̂ / (√v̂ + eps), SPEC step 9)"
        )
    return NGAdamConfig(**values)


def _traced_hyperparameters(hyper: dict) -> StepHyperparameters:
    """What a step reads when some values are 0-d arrays or tracers (``inject_hyperparams``): kept
    as given, validated at ``init`` by :func:`_validated` where concrete. The learning rate (maybe
    a schedule) and the weight decay also go to every step as overrides."""
    return StepHyperparameters.of(hyper, jnp.log)


def _replicated(leaf):
    """A sharding replicating small arrays over ``leaf``'s devices, or ``None`` (uncommitted arrays
    on the default device, or under jit: the computation places its outputs) when ``leaf`` is not
    committed (see :func:`_zero_moment`)."""
    sharding = _committed_sharding(leaf)
    if sharding is None:
        return None
    if isinstance(sharding, jax.sharding.NamedSharding):
        return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())
    if len(sharding.device_set) == 1:
        return jax.sharding.SingleDeviceSharding(next(iter(sharding.device_set)))
    raise ValueError(f"neat.optax: unsupported parameter sharding {sharding!r}; use a NamedSharding")

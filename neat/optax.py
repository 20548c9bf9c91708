"""NG-Adam as an ``optax.GradientTransformation``: ``neat.optax.ng_adam(learning_rate, ...)``.

The math is the core's (:func:`neat.functional.step`, SPEC.md steps 0–9) on the
parameter pytree's leaves. ``update(grads, state, params)`` returns
``updates = new_params − params`` (in the parameters' dtype), so that
``optax.apply_updates(params, updates)`` gives the new parameters. Rounding: when
``θ_new`` and ``θ`` are within a factor 2 of each other, ``θ_new − θ`` is exact
(Sterbenz) and ``θ + (θ_new − θ)`` is exactly the core's ``θ_new``; otherwise (a
parameter near 0 or changing sign) the subtraction and the addition each round once,
so the result is within about one ulp (float32: ~6e-8 relative) of the core's.

* ``learning_rate``: a float, a 0-d array or an optax schedule; a schedule is
  evaluated at the state's step count ``t`` (steps taken so far), which skipped
  (non-finite) steps do not advance (SPEC step 0).
* ``weight_decay``: decoupled, multiplied by the learning rate, on every leaf —
  ``optax.adamw`` with ``mask=None`` (SPEC step 9).
* Players: by default one per parent path of a leaf (``params['Dense_0']``),
  joined in a chain in pytree order; see :func:`neat.adapters.optax_adapter.pytree_layout`.
* A gradient leaf may be ``None`` (a parameter without a gradient this step): that leaf is
  left as it is (update 0) and the step is the sub-game of the active players (SPEC v2);
  under ``jit`` each pattern of ``None`` leaves is its own compilation.
* The state is the core's :class:`neat.NGAdamState`: its :class:`~neat.state.GameState`, the
  moments and the :class:`~neat.topology.GameTables` of the game, all arrays (jit-, pickle- and
  orbax-friendly). The tables are state leaves rather than constants of the jitted step: a
  checkpoint then carries the game it was trained in, and the compiled step does not depend
  on it. The moments are ``zeros_like`` the parameters, so they take the parameters'
  sharding (eagerly, or under ``jit`` with Explicit mesh axes; with Auto axes under ``jit``
  give ``out_shardings`` as for any optax state); the small arrays are replicated on the
  parameters' devices. ``update`` returns a state of exactly ``init``'s avals (shapes,
  dtypes, weak types) and shardings, so a jitted step compiles once.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from neat import arrays, functional
from neat.adapters.optax_adapter import pytree_layout
from neat.config import DEFAULTS, NGAdamConfig, StepHyperparameters
from neat.state import GameState, NGAdamState
from neat.topology import Topology

__all__ = ["ng_adam"]


def ng_adam(learning_rate: float | optax.ScalarOrSchedule = DEFAULTS["lr"],
            b1: float = DEFAULTS["betas"][0], b2: float = DEFAULTS["betas"][1],
            eps: float = DEFAULTS["eps"], weight_decay: float = DEFAULTS["weight_decay"],
            gamma: float = DEFAULTS["gamma"], zeta: float = DEFAULTS["zeta"], mu: float = DEFAULTS["mu"],
            step_bounds: tuple[float, float] = DEFAULTS["step_bounds"], leak: float = DEFAULTS["leak"],
            players: Callable | list | None = None, graph: Any = None) -> optax.GradientTransformation:
    """NG-Adam (SPEC.md) as an optax transformation; ``optax.adamw`` when ``gamma = zeta = 0``.

    ``players``: ``None`` (one player per module subtree), a function from a leaf's key
    path to a player name, or lists of leaf indices in pytree order. ``graph``: the
    player graph (``n × n`` weights or ``(i, j, w)`` edges; ``None``: a chain).
    ``mu``, ``players`` and ``graph`` are fixed at ``init`` (they define ``S``).
    Numeric hyperparameters may be 0-d arrays, so ``optax.inject_hyperparams`` works;
    values injected after ``init`` are used as given, without validation. There, name a
    ``players`` function in ``static_args`` (optax would take it for a schedule), and ``mu``
    too if ``init`` runs under ``jit``.
    """
    hyper = dict(lr=learning_rate, betas=(b1, b2), eps=eps, weight_decay=weight_decay, gamma=gamma,
                 zeta=zeta, mu=mu, step_bounds=step_bounds, leak=leak)
    python_numbers = all(isinstance(v, numbers.Real) for v in jax.tree.leaves(dict(hyper, lr=0.0)))
    step_hyper = _validated(hyper) if python_numbers else _traced_hyperparameters(hyper)

    topologies: dict = {}

    def topology_of(params) -> Topology:
        """The game of ``params``: its players, graph and ``S`` (built once per pytree structure)."""
        treedef = jax.tree.structure(params)
        if treedef not in topologies:
            layout = pytree_layout(params, players)
            topologies[treedef] = Topology.build(len(layout.tensors), layout.players, graph, mu=_static_mu(mu))
        return topologies[treedef]

    def init_fn(params) -> NGAdamState:
        if not python_numbers and _all_concrete(hyper):  # arrays (inject_hyperparams), once, off the step
            _validated(hyper)
        return _init_placed(jax.tree.leaves(params), topology_of(params))

    def update_fn(updates, state: NGAdamState, params=None):
        if params is None:
            raise ValueError("neat.optax.ng_adam needs the parameters: call update(grads, state, params)")
        param_leaves, treedef = jax.tree.flatten(params)
        try:
            grad_leaves = treedef.flatten_up_to(updates)
        except (ValueError, TypeError) as error:
            raise ValueError(f"neat.optax.ng_adam: the gradients' pytree does not match the parameters' ({error})") \
                from None
        lr = learning_rate(state.game.count) if callable(learning_rate) else learning_rate
        inactive = any(g is None for g in grad_leaves)  # SPEC v2: the step is the active players' sub-game
        new_leaves, state = functional.step(param_leaves, grad_leaves, state, step_hyper, lr=lr,
                                            weight_decay=weight_decay,
                                            topology=topology_of(params) if inactive else None)
        deltas = [new - old for new, old in zip(new_leaves, param_leaves)]
        return jax.tree.unflatten(treedef, deltas), state

    return optax.GradientTransformation(init_fn, update_fn)


def _all_concrete(values) -> bool:
    return not any(isinstance(v, jax.core.Tracer) for v in jax.tree.leaves(values))


def _number(value):
    """A concrete scalar (Python number or 0-d array) as a float, for validation only."""
    return value if isinstance(value, numbers.Real) else float(value)


def _validated(hyper: dict) -> NGAdamConfig:
    """SPEC "Hyperparameters" checks on concrete values (raises ``ValueError`` naming the value)."""
    lr = hyper["lr"]
    if callable(lr) or isinstance(lr, jax.core.Tracer):  # a schedule, or a learning rate traced under jit
        lr = DEFAULTS["lr"]
    return NGAdamConfig(**jax.tree.map(_number, dict(hyper, lr=lr)))


def _traced_hyperparameters(hyper: dict) -> StepHyperparameters:
    """What a step reads when some values are 0-d arrays or tracers (``inject_hyperparams``): kept
    as given, validated at ``init`` by :func:`_validated` where concrete. The learning rate (maybe
    a schedule) and the weight decay also go to every step as overrides."""
    low, high = hyper["step_bounds"]
    return StepHyperparameters(lr=hyper["lr"], betas=tuple(hyper["betas"]), eps=hyper["eps"],
                               weight_decay=hyper["weight_decay"], gamma=hyper["gamma"], zeta=hyper["zeta"],
                               leak=hyper["leak"], log_step_bounds=(jnp.log(low), jnp.log(high)))


def _static_mu(mu) -> float:
    if isinstance(mu, jax.core.Tracer):
        raise TypeError("neat.optax.ng_adam: mu defines the player coupling at init and cannot be traced; "
                        "with optax.inject_hyperparams pass static_args=('mu',) or call init outside jit")
    return _number(mu)


def _init_placed(leaves: list, topology: Topology) -> NGAdamState:
    """The core's fresh state (SPEC "State") with moments placed like their parameters and the
    game state and tables replicated on the parameters' devices.

    The moments are ``zeros_like`` each parameter (same sharding). The small arrays cannot take
    a sharded parameter's placement (``device(params[0])`` is then a ``Sharding`` of its shape),
    hence :func:`_replicated`."""
    arrays.check_floating(jnp, leaves, "params")
    state_dtypes = [arrays.state_dtype(jnp, p.dtype) for p in leaves]
    stats_dtype = arrays.statistics_dtype(jnp, state_dtypes)
    placement = _replicated(leaves[0])
    return NGAdamState(
        game=GameState.zeros(jnp, topology.num_tensors, topology.num_players, stats_dtype, placement),
        exp_avg=_moments(leaves, state_dtypes),
        exp_avg_sq=_moments(leaves, state_dtypes),
        tables=topology.tables(jnp, placement, stats_dtype),
    )


def _moments(leaves: list, dtypes: list) -> list:
    """Zeros like each parameter, on its sharding and committed to it (as a jitted step's outputs are,
    so that the second step does not compile again); under tracing, placed by the computation."""
    return [jnp.zeros_like(p, dtype=d, device=None if isinstance(p, jax.core.Tracer) else p.sharding)
            for p, d in zip(leaves, dtypes)]


def _replicated(leaf):
    """A sharding replicating small arrays over ``leaf``'s devices, or ``None`` under tracing."""
    if isinstance(leaf, jax.core.Tracer):
        return None  # under jit, the computation places its outputs
    sharding = leaf.sharding
    if isinstance(sharding, jax.sharding.NamedSharding):
        return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())
    if len(sharding.device_set) == 1:
        return jax.sharding.SingleDeviceSharding(next(iter(sharding.device_set)))
    raise ValueError(f"neat.optax.ng_adam: unsupported parameter sharding {sharding!r}; use a NamedSharding")

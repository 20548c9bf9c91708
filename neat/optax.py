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
* The state is :class:`neat.NGAdamState`, a pytree of arrays (jit-, pickle- and
  orbax-friendly). Its moments are ``zeros_like`` the parameters, so they take the
  parameters' sharding (eagerly, or under ``jit`` with Explicit mesh axes; with Auto
  axes under ``jit`` give ``out_shardings`` as for any optax state); the small
  per-player arrays are replicated on the parameters' devices.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from neat import arrays, functional
from neat.adapters.optax_adapter import pytree_layout
from neat.config import DEFAULTS, NGAdamConfig
from neat.state import NGAdamState

__all__ = ["ng_adam"]

_STEP_FIELDS = ("betas", "eps", "gamma", "zeta", "leak", "step_bounds")


def ng_adam(learning_rate: "float | optax.ScalarOrSchedule" = DEFAULTS["lr"],
            b1: float = DEFAULTS["betas"][0], b2: float = DEFAULTS["betas"][1],
            eps: float = DEFAULTS["eps"], weight_decay: float = DEFAULTS["weight_decay"],
            gamma: float = DEFAULTS["gamma"], zeta: float = DEFAULTS["zeta"], mu: float = DEFAULTS["mu"],
            step_bounds: tuple[float, float] = DEFAULTS["step_bounds"], leak: float = DEFAULTS["leak"],
            players: "Callable | list | None" = None, graph: Any = None) -> optax.GradientTransformation:
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
    step_config = _validated(hyper) if python_numbers else _array_config(hyper)

    def init_fn(params) -> NGAdamState:
        if not python_numbers and _all_concrete(hyper):  # arrays (inject_hyperparams), once, off the step
            _validated(hyper)
        layout = pytree_layout(params, players)
        return _init_placed(layout.tensors, layout.players, graph, mu)

    def update_fn(updates, state: NGAdamState, params=None):
        if params is None:
            raise ValueError("neat.optax.ng_adam needs the parameters: call update(grads, state, params)")
        param_leaves, treedef = jax.tree.flatten(params)
        try:
            grad_leaves = treedef.flatten_up_to(updates)
        except (ValueError, TypeError) as error:
            raise ValueError(f"neat.optax.ng_adam: the gradients' pytree does not match the parameters' ({error})") \
                from None
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        new_leaves, state = functional.step(param_leaves, grad_leaves, state, step_config,
                                            lr=lr, weight_decay=weight_decay)
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


def _array_config(hyper: dict) -> NGAdamConfig:
    """The config the core reads in a step (``betas, eps, gamma, zeta, leak, step_bounds``) when
    some values are 0-d arrays or tracers (``inject_hyperparams``): they are kept as given, which
    bypasses ``NGAdamConfig``'s float-only validation (done by :func:`_validated` at ``init``
    on concrete values). ``lr`` and ``weight_decay`` go to the step as overrides.
    """
    config = NGAdamConfig()
    for name in _STEP_FIELDS:
        object.__setattr__(config, name, hyper[name])
    return config


def _static_mu(mu) -> float:
    if isinstance(mu, jax.core.Tracer):
        raise TypeError("neat.optax.ng_adam: mu defines the player coupling at init and cannot be traced; "
                        "with optax.inject_hyperparams pass static_args=('mu',) or call init outside jit")
    return _number(mu)


def _init_placed(leaves: list, players, graph, mu) -> NGAdamState:
    """``functional.init_state`` with moments placed like their parameters and the small
    per-player arrays replicated on the parameters' devices.

    The small state depends on dtypes, players and graph only, so the core builds it on
    host (NumPy) from 0-d stand-ins of the moments' dtypes — also under ``jit`` — instead of
    ``device=device(params[0])``, which for a sharded parameter is a ``Sharding`` the small
    arrays cannot take. The moments are ``zeros_like`` each parameter (same sharding).
    """
    stand_ins = [np.zeros((), dtype=np.dtype(arrays.state_dtype(jnp, p.dtype))) for p in leaves]
    small = functional.init_state(stand_ins, players, graph, mu=_static_mu(mu))
    placement = _replicated(leaves[0])
    small_fields = {name: jax.device_put(jnp.asarray(getattr(small, name)), placement)
                    for name in ("count", "skipped", "log_step", "alignment", "conflict", "membership", "smoothing")}
    moments = lambda: [jnp.zeros_like(p, dtype=arrays.state_dtype(jnp, p.dtype)) for p in leaves]  # noqa: E731
    return small._replace(exp_avg=moments(), exp_avg_sq=moments(), **small_fields)


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

"""NG-Adam as an ``optax.GradientTransformation``: ``neat.optax.ng_adam(learning_rate, ...)``.

The math is the core's (:func:`neat.functional.step`, SPEC.md steps 0–9) on the
parameter pytree's leaves. ``update(grads, state, params)`` returns
``updates = new_params − params`` (in the parameters' dtype), so that
``optax.apply_updates(params, updates)`` gives the new parameters. In float32 that
sum is rounded once more than the core's direct ``θ_new``: the two agree to about
one ulp of ``θ`` per step.

* ``learning_rate``: a float, a 0-d array or an optax schedule; a schedule is
  evaluated at the state's step count ``t`` (steps taken so far), which skipped
  (non-finite) steps do not advance (SPEC step 0).
* ``weight_decay``: decoupled, multiplied by the learning rate, on every leaf —
  ``optax.adamw`` with ``mask=None`` (SPEC step 9).
* Players: by default one per parent path of a leaf (``params['Dense_0']``),
  joined in a chain in pytree order; see :func:`neat.adapters.optax_adapter.pytree_layout`.
* The state is :class:`neat.NGAdamState`, a pytree of arrays (jit-, pickle- and
  orbax-friendly). Its moments follow the parameters' sharding; the small
  per-player arrays are replicated on the parameters' devices.
"""

from __future__ import annotations

import dataclasses
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
    values injected after ``init`` are used as given, without validation.
    """
    hyper = dict(lr=learning_rate, betas=(b1, b2), eps=eps, weight_decay=weight_decay, gamma=gamma,
                 zeta=zeta, mu=mu, step_bounds=step_bounds, leak=leak)
    if _all_concrete(hyper):
        _validated(hyper)
    step_config = _step_config(hyper)

    def init_fn(params) -> NGAdamState:
        if _all_concrete(hyper):  # arrays from inject_hyperparams are concrete unless init is jitted
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
    lr = DEFAULTS["lr"] if callable(hyper["lr"]) else hyper["lr"]
    values = dict(hyper, lr=lr)
    return NGAdamConfig(**jax.tree.map(_number, values))


def _step_config(hyper: dict) -> NGAdamConfig:
    """The config the core reads in a step (``betas, eps, gamma, zeta, leak, step_bounds``).

    ``lr`` and ``weight_decay`` go to the step as overrides. Values are kept as given —
    floats, or 0-d arrays/tracers from ``inject_hyperparams`` — so this bypasses
    ``NGAdamConfig``'s float-only validation, which :func:`_validated` did on concrete values.
    """
    config = dataclasses.replace(NGAdamConfig())
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

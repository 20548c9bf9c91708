"""The pure functional API: ``ng_adam(...)`` → ``init`` / ``step`` / ``diagnostics``.

``step`` takes arrays and a state and returns new ones; nothing is mutated and
no value leaves the device, so it runs under ``jax.jit`` as well as eagerly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import array_api_compat

from neat import arrays, game
from neat.config import DEFAULTS, NGAdamConfig
from neat.kernels import GENERIC, BiasCorrection, StepKernels, UpdateScalars
from neat.players import PlayerGraph, Players
from neat.plugins import plugin_manager
from neat.state import NGAdamState


def _as_list(values, what: str) -> list:
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"{what} must be a list or tuple of arrays, got {type(values).__qualname__}")
    return list(values)


def init_state(params: Sequence[Any], players=None, graph=None, *, mu: float) -> NGAdamState:
    """A fresh state for ``params``; validates the player map and the graph (SPEC "Objects", "State")."""
    params = _as_list(params, "params")
    xp = arrays.namespace_of(params, "params")
    arrays.check_floating(xp, params, "params")
    player_map = Players.from_spec(players, len(params))
    player_graph = PlayerGraph.from_spec(graph, player_map.num_players)
    state_dtypes = [arrays.state_dtype(xp, p.dtype) for p in params]
    stats_dtype = arrays.statistics_dtype(xp, state_dtypes)
    device = array_api_compat.device(params[0])

    def small(values, dtype):
        return xp.asarray(values, dtype=dtype, device=device)

    n = player_map.num_players
    return NGAdamState(
        count=small(0, xp.int32),
        skipped=small(0, xp.int32),
        log_step=xp.zeros((n,), dtype=xp.float32, device=device),
        alignment=xp.zeros((n,), dtype=xp.float32, device=device),
        conflict=xp.zeros((n,), dtype=xp.float32, device=device),
        exp_avg=[xp.zeros_like(p, dtype=d) for p, d in zip(params, state_dtypes)],
        exp_avg_sq=[xp.zeros_like(p, dtype=d) for p, d in zip(params, state_dtypes)],
        membership=small(player_map.membership().tolist(), stats_dtype),
        smoothing=small(player_graph.smoothing(mu).tolist(), stats_dtype),
    )


def _check_state(params, state: NGAdamState) -> None:
    if not isinstance(state, NGAdamState):
        raise TypeError(f"state must be an NGAdamState from init(), got {type(state).__qualname__}")
    if len(params) != state.num_tensors:
        raise ValueError(f"got {len(params)} parameters but the state was initialised for {state.num_tensors}")
    for k, (p, m) in enumerate(zip(params, state.exp_avg)):
        if tuple(p.shape) != tuple(m.shape):
            raise ValueError(f"params[{k}] has shape {tuple(p.shape)} but its state has shape {tuple(m.shape)}")


def step(params: Sequence[Any], grads: Sequence[Any], state: NGAdamState, config: NGAdamConfig,
         *, lr=None, weight_decay=None, kernels: "StepKernels | None" = None,
         inplace: bool = False) -> tuple[list, NGAdamState]:
    """One NG-Adam step, SPEC.md steps 0–9. Returns ``(new_params, new_state)``.

    ``lr`` and ``weight_decay`` override the config's: a scalar (float or 0-d
    array, e.g. a schedule's value) or one value per tensor (param groups).
    ``kernels``: the two array passes to use (default: the backend's fused ones
    if it has them, else :data:`neat.kernels.GENERIC`). ``inplace=True`` writes
    the new parameters and moments into the given arrays (mutable namespaces);
    the small per-player state is always returned as new arrays.
    """
    params, grads = _as_list(params, "params"), _as_list(grads, "grads")
    xp = arrays.namespace_of([*params, *grads], "params and grads")
    arrays.check_floating(xp, params, "params")
    arrays.check_like(xp, params, grads)
    _check_state(params, state)
    kernels = kernels or plugin_manager().hook.neat_step_kernels(xp=xp) or GENERIC
    stats_dtype = state.smoothing.dtype
    num_tensors = len(params)

    # Steps 0, 2, 3: statistics pass (u from the moments of step t-1).
    previous = BiasCorrection.at(xp, state.count, config.betas, config.eps, stats_dtype)
    tensor_stats, finite = kernels.statistics(xp, grads, state.exp_avg, state.exp_avg_sq, previous, stats_dtype)
    # Step 1, only for a step taken. asarray: NumPy turns 0-d sums into scalars, whose power rounds differently.
    count = xp.asarray(state.count + xp.astype(finite, state.count.dtype))
    grad_sq, cross, dir_sq = (game.player_sums(xp, state.membership, tensor_stats[:, c]) for c in range(3))

    # Steps 4-7: the game, on per-player vectors.
    align = game.alignment(xp, grad_sq, cross, dir_sq)
    conflict = game.shared_conflict(xp, state.smoothing, align)
    nge = game.nge_coefficient(xp, config.gamma, conflict, cross, dir_sq)
    log_step = game.nsa_log_step(xp, state.smoothing, xp.astype(state.log_step, stats_dtype), align, count,
                                 zeta=config.zeta, leak=config.leak, log_bounds=config.log_step_bounds)
    log_step = xp.astype(log_step, state.log_step.dtype)  # z is stored in float32; λ = e^z uses that z
    step_scale = game.per_tensor(xp, state.membership, xp.exp(xp.astype(log_step, stats_dtype)))

    # Steps 8, 9: update pass.
    lr_k = _per_tensor(xp, config.lr if lr is None else lr, num_tensors, state.smoothing, "lr")
    decay_k = _per_tensor(xp, config.weight_decay if weight_decay is None else weight_decay,
                          num_tensors, state.smoothing, "weight_decay")
    scalars = UpdateScalars(nge=game.per_tensor(xp, state.membership, nge),
                            step=lr_k * step_scale,
                            decay=1.0 - lr_k * decay_k)
    current = BiasCorrection.at(xp, count, config.betas, config.eps, stats_dtype)
    new_params, exp_avg, exp_avg_sq = kernels.update(
        xp, params, grads, state.exp_avg, state.exp_avg_sq, scalars, previous, current, config.betas, finite, inplace)

    def kept(new, old):
        return xp.where(finite, xp.astype(new, old.dtype), old)

    return new_params, state._replace(
        count=count,
        skipped=xp.asarray(state.skipped + xp.astype(~finite, state.skipped.dtype)),
        log_step=kept(log_step, state.log_step),
        alignment=kept(align, state.alignment),
        conflict=kept(conflict, state.conflict),
        exp_avg=exp_avg,
        exp_avg_sq=exp_avg_sq,
    )


def _per_tensor(xp, value, num_tensors: int, like, what: str):
    """A hyperparameter as a ``(K,)`` array like ``like``: one scalar for all tensors, or one per tensor."""
    dtype, device = like.dtype, array_api_compat.device(like)
    if isinstance(value, (list, tuple)):
        if len(value) != num_tensors:
            raise ValueError(f"{what}: got {len(value)} per-tensor values for {num_tensors} tensors")
        return xp.stack([xp.asarray(v, dtype=dtype, device=device) for v in value])
    return xp.broadcast_to(xp.asarray(value, dtype=dtype, device=device), (num_tensors,))


def diagnostics(state: NGAdamState) -> dict:
    """Per-player ``alignment`` (a), ``kappa`` (κ), ``step_scale`` (λ = e^z); global
    ``mean_alignment`` and ``skipped_steps`` (SPEC "Diagnostics"). Arrays, not host values."""
    xp = array_api_compat.array_namespace(state.log_step)
    return {
        "alignment": state.alignment,
        "kappa": state.conflict,
        "step_scale": xp.exp(state.log_step),
        "mean_alignment": xp.mean(state.alignment),
        "skipped_steps": state.skipped,
    }


@dataclass(frozen=True)
class NGAdam:
    """The functional NG-Adam optimizer returned by :func:`ng_adam` (explicit state, pure step)."""

    config: NGAdamConfig

    def init(self, params: Sequence[Any], players=None, graph=None) -> NGAdamState:
        """State for ``params`` (a list of arrays). ``players``: lists of tensor indices
        (None: one player per tensor). ``graph``: n×n weights, ``(i, j, w)`` edges or None (chain)."""
        return init_state(params, players, graph, mu=self.config.mu)

    def step(self, params, grads, state: NGAdamState):
        """``(params, state) → (new params, new state)``; see :func:`step`."""
        return step(params, grads, state, self.config)

    @staticmethod
    def diagnostics(state: NGAdamState) -> dict:
        return diagnostics(state)


def ng_adam(*, lr: float = DEFAULTS["lr"], betas=DEFAULTS["betas"], eps: float = DEFAULTS["eps"],
            weight_decay: float = DEFAULTS["weight_decay"], gamma: float = DEFAULTS["gamma"],
            zeta: float = DEFAULTS["zeta"], mu: float = DEFAULTS["mu"],
            step_bounds=DEFAULTS["step_bounds"], leak: float = DEFAULTS["leak"]) -> NGAdam:
    """NG-Adam with validated hyperparameters (SPEC.md "Hyperparameters"); see :class:`NGAdam`.

    * ``lr`` (η ≥ 0), ``betas`` (0 ≤ β < 1), ``eps`` (ε ≥ 0, after the square root),
      ``weight_decay`` (ω ≥ 0, decoupled): as in AdamW.
    * ``gamma`` (γ ∈ [0, 1]): NGE strength; 1 removes the conflicting projection.
    * ``zeta`` (ζ ≥ 0): NSA rate on the per-player log-step.
    * ``mu`` (μ ≥ 0): coupling through the player graph; 0 makes players independent.
    * ``step_bounds`` (0 < λmin ≤ 1 ≤ λmax): range of a player's step multiplier.
    * ``leak`` (ρ ∈ [0, 1)): pull of the log-step back towards 0.

    Defaults are :data:`neat.config.DEFAULTS`. ``gamma = zeta = 0`` is exactly AdamW.
    Every invalid value raises ``ValueError`` naming it.
    """
    return NGAdam(NGAdamConfig(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, gamma=gamma,
                               zeta=zeta, mu=mu, step_bounds=step_bounds, leak=leak))

"""The two array passes of a step, their per-tensor scalars, and the generic implementation.

A step reads every tensor twice (docs/spec.md, "Cost"):

* the **statistics pass** (SPEC steps 2, 3) reads ``g, m, v`` and returns the
  per-tensor sums ``⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩`` (and, optionally, the direction ``u`` it
  formed, handed explicitly to the update pass of the same step);
* the **update pass** (SPEC steps 2, 6, 8, 9) reads ``θ, g, m, v`` and writes the
  new ``θ, m, v``, unchanged where the step is skipped (step 0).

Both passes use the Adam direction in one arithmetic form, shared by every kernel set::

    direction(m, v) = m · scale / (√v + shift),   0 where √v + shift = 0

with ``scale = √(1 − β2^t) / (1 − β1^t)`` and ``shift = ε √(1 − β2^t)``, which is
SPEC's ``(m / (1 − β1^t)) / (√(v / (1 − β2^t)) + ε)`` multiplied through by ``√(1 − β2^t)``.
A tensor that has not stepped yet (``t_k = 0``) has ``m = v = 0`` and ``scale = 0``.
``t``, ``β1``, ``β2`` and ``ε`` are the tensor's own (SPEC v2.1: per tensor and per step).

Kernel sets are registered by backends through the ``neat_step_kernels`` hook
(:mod:`neat.kernel_selection` picks one); :data:`GENERIC` is the reference every
fused set must match.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol


class TensorScalars(NamedTuple):
    """Per-tensor scalars of one step, each a ``(K,)`` array in the statistics dtype.

    * ``prev_scale``, ``prev_shift``: the direction of the tensor's previous step, ``u`` (step 2);
    * ``nge``: ``γ κ_i C_i / U_i`` of the tensor's player, so ``ĝ = g − nge · u`` (step 6);
    * ``decay``: ``1 − η ω`` (step 9);
    * ``step``: ``η λ_i · scale`` of the current step, so ``θ ← θ·decay − step · m / (√v + shift)``;
    * ``shift``: ``ε √(1 − β2^t_k)`` of the current step;
    * ``beta1``, ``weight1``, ``beta2``, ``weight2``: the moments' coefficients ``β1, 1 − β1, β2,
      1 − β2``, so ``m ← beta1·m + weight1·ĝ`` and ``v ← beta2·v + weight2·g²`` (step 8). Where one
      value serves every tensor (the usual case) each is that scalar (a Python float, ``1 − β``
      computed in float64, or a 0-d array), read through :func:`entry`; else a ``(K,)`` array.
    """

    prev_scale: Any
    prev_shift: Any
    nge: Any
    decay: Any
    step: Any
    shift: Any
    beta1: Any
    weight1: Any
    beta2: Any
    weight2: Any


class Statistics(NamedTuple):
    """Result of the statistics pass: ``sums`` is ``(K, 3)`` in the statistics dtype with columns
    ``⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩``; ``direction`` is the list of ``u`` it formed, or ``None`` when the
    update pass recomputes ``u`` from ``m, v`` (fused kernels, which read ``m, v`` anyway)."""

    sums: Any
    direction: list | None


class StepKernels(Protocol):
    """The two passes of a step; implementations must agree with :data:`GENERIC`.

    Optional attributes a kernel set may add, each held to the same results:

    * ``game_xp``: the namespace the per-player game runs in (e.g. NumPy for CPU kernels);
    * ``game``: an object with :func:`neat.game.direction_scalars` and :func:`neat.game.settle`
      (same arguments and results), e.g. compiled;
    * ``fused_play(params, grads, exp_avg, exp_avg_sq, game_state, tables, config, lr,
      weight_decay) -> bool``: a whole in-place step (both passes and the game, the new game state
      written into ``game_state``'s arrays, in ``game_xp``); ``False``, having changed nothing,
      when it cannot take these arrays.

    ``finite`` is a 0-d bool array, false when the step is skipped (SPEC step 0), and is never
    read on the host.
    """

    name: str

    def statistics(
        self, xp, grads: Sequence, exp_avg: Sequence, exp_avg_sq: Sequence, scalars: TensorScalars, stats_dtype
    ) -> Statistics: ...

    def update(
        self,
        xp,
        params: Sequence,
        grads: Sequence,
        exp_avg: Sequence,
        exp_avg_sq: Sequence,
        statistics: Statistics,
        scalars: TensorScalars,
        finite,
        inplace: bool = False,
    ) -> tuple[list, list, list]:
        """Return new ``(params, exp_avg, exp_avg_sq)``; the old values where ``finite`` is false.

        With ``inplace=True`` the results are written into the given arrays, which are returned."""
        ...


def adam_direction(xp, exp_avg, exp_avg_sq, scale, shift):
    """``m · scale / (√v + shift)``, 0 where the denominator is 0 (SPEC steps 2 and 9)."""
    denominator = xp.sqrt(exp_avg_sq) + shift
    safe = xp.where(denominator > 0, denominator, xp.ones_like(denominator))
    return xp.where(denominator > 0, exp_avg * scale / safe, xp.zeros_like(denominator))


class GenericKernels:
    """Both passes written once against the array API, one tensor at a time."""

    name = "generic"

    def statistics(self, xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype):
        rows, directions = [], []
        for k, (g, m, v) in enumerate(zip(grads, exp_avg, exp_avg_sq)):
            g = xp.astype(g, m.dtype)
            u = adam_direction(xp, m, v, _scalar(xp, scalars.prev_scale, k, m), _scalar(xp, scalars.prev_shift, k, m))
            sums = [xp.sum(xp.astype(x, stats_dtype) * xp.astype(y, stats_dtype)) for x, y in ((g, g), (g, u), (u, u))]
            rows.append(xp.stack(sums))
            directions.append(u)
        return Statistics(xp.stack(rows), directions)

    def update(self, xp, params, grads, exp_avg, exp_avg_sq, statistics, scalars, finite, inplace=False):
        new_params, new_avg, new_avg_sq = [], [], []
        for k, (p, g, m, v) in enumerate(zip(params, grads, exp_avg, exp_avg_sq)):
            g = xp.astype(g, m.dtype)
            if statistics.direction is None:
                u = adam_direction(
                    xp, m, v, _scalar(xp, scalars.prev_scale, k, m), _scalar(xp, scalars.prev_shift, k, m)
                )
            else:
                u = statistics.direction[k]
            g_hat = g - _scalar(xp, scalars.nge, k, m) * u
            m_next = entry(xp, scalars.beta1, k, m) * m + entry(xp, scalars.weight1, k, m) * g_hat
            v_next = entry(xp, scalars.beta2, k, m) * v + entry(xp, scalars.weight2, k, m) * (g * g)
            direction = adam_direction(
                xp, m_next, v_next, _scalar(xp, scalars.step, k, m), _scalar(xp, scalars.shift, k, m)
            )
            p_next = xp.astype(p, m.dtype) * _scalar(xp, scalars.decay, k, m) - direction
            new_params.append(_result(xp, p, xp.astype(p_next, p.dtype), finite, inplace))
            new_avg.append(_result(xp, m, xp.astype(m_next, m.dtype), finite, inplace))
            new_avg_sq.append(_result(xp, v, xp.astype(v_next, v.dtype), finite, inplace))
        return new_params, new_avg, new_avg_sq


def _scalar(xp, column, k: int, like):
    """Entry ``k`` of a per-tensor column, in the dtype of ``like``."""
    return xp.astype(column[k], like.dtype)


def entry(xp, value, k: int, like):
    """Tensor ``k``'s value of a :class:`TensorScalars` field that may be one scalar for every
    tensor: entry ``k`` of a ``(K,)`` array, or the 0-d array, in the dtype of ``like``; a Python
    number as it is (array arithmetic rounds it to the array's dtype)."""
    if isinstance(value, (int, float)):
        return value
    return xp.astype(value if value.ndim == 0 else value[k], like.dtype)


def _result(xp, old, new, keep_new, inplace: bool):
    """``new`` where ``keep_new`` else ``old``; written into ``old`` when ``inplace``."""
    chosen = xp.where(keep_new, new, old)
    if not inplace:
        return chosen
    old[...] = chosen
    return old


GENERIC = GenericKernels()

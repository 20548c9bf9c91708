"""The two array passes of a step and their generic array-API implementation.

A step reads every tensor twice (SPEC.md, "Cost"):

* the **statistics pass** (SPEC steps 0, 2, 3) reads ``g, m, v`` and returns the
  per-tensor sums ``⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩`` and whether every ``g`` is finite;
* the **update pass** (SPEC steps 2, 6, 8, 9) reads ``θ, g, m, v`` and returns
  the new ``θ, m, v``, unchanged where the step is skipped.

A backend may replace both with fused kernels through the ``neat_step_kernels``
hook; :data:`GENERIC` is the reference every replacement must match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence


@dataclass(frozen=True)
class BiasCorrection:
    """``1 − β1^t``, ``1 − β2^t`` and the ``ε`` to use with them, as 0-d arrays.

    At ``t = 0`` (no step taken yet) both corrections are 1 and ``ε`` gains 1, so
    the direction of the empty moments is exactly 0 even with ``ε = 0`` (SPEC step 2, ``u = 0`` at ``t = 1``).
    """

    first: Any
    second: Any
    eps: Any

    @classmethod
    def at(cls, xp, count, betas, eps, dtype) -> "BiasCorrection":
        t = xp.astype(count, dtype)
        never = xp.astype(count == 0, dtype)
        return cls(1.0 - betas[0] ** t + never, 1.0 - betas[1] ** t + never, eps + never)

    def astype(self, xp, dtype) -> "BiasCorrection":
        return BiasCorrection(*(xp.astype(x, dtype) for x in (self.first, self.second, self.eps)))


def adam_direction(xp, exp_avg, exp_avg_sq, correction: BiasCorrection):
    """``(m / (1 − β1^t)) / (√(v / (1 − β2^t)) + ε)`` (SPEC steps 2 and 9)."""
    return (exp_avg / correction.first) / (xp.sqrt(exp_avg_sq / correction.second) + correction.eps)


@dataclass(frozen=True)
class UpdateScalars:
    """Per-tensor scalars of the update pass, as ``(K,)`` arrays in the statistics dtype.

    ``nge``: ``γ κ C/U`` of the tensor's player; ``step``: ``η λ``; ``decay``: ``1 − η ω``.
    """

    nge: Any
    step: Any
    decay: Any


class StepKernels(Protocol):
    """The two passes of a step; implementations must agree with :data:`GENERIC`."""

    def statistics(self, xp, grads: Sequence, exp_avg: Sequence, exp_avg_sq: Sequence,
                   previous: BiasCorrection, stats_dtype) -> tuple[Any, Any]:
        """Return ``(stats, finite)``: ``stats`` is ``(K, 3)`` in ``stats_dtype`` with columns
        ``⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩``; ``finite`` is a 0-d bool, true when every gradient is finite."""

    def update(self, xp, params: Sequence, grads: Sequence, exp_avg: Sequence, exp_avg_sq: Sequence,
               scalars: UpdateScalars, previous: BiasCorrection, current: BiasCorrection,
               betas: tuple[float, float], finite, inplace: bool = False) -> tuple[list, list, list]:
        """Return new ``(params, exp_avg, exp_avg_sq)``; the old ones where ``finite`` is false.

        With ``inplace=True`` the results are written into the given arrays, which are returned."""


class GenericKernels:
    """Both passes written once against the array API, one tensor at a time."""

    def statistics(self, xp, grads, exp_avg, exp_avg_sq, previous, stats_dtype):
        rows, finite = [], []
        for g, m, v in zip(grads, exp_avg, exp_avg_sq):
            g = xp.astype(g, m.dtype)
            u = adam_direction(xp, m, v, previous.astype(xp, m.dtype))
            row = xp.stack([xp.sum(g * g), xp.sum(g * u), xp.sum(u * u)])
            rows.append(xp.astype(row, stats_dtype))
            finite.append(xp.all(xp.isfinite(g)))
        return xp.stack(rows), xp.all(xp.stack(finite))

    def update(self, xp, params, grads, exp_avg, exp_avg_sq, scalars, previous, current, betas, finite,
               inplace=False):
        beta1, beta2 = betas
        new_params, new_avg, new_avg_sq = [], [], []
        for k, (p, g, m, v) in enumerate(zip(params, grads, exp_avg, exp_avg_sq)):
            dtype = m.dtype
            g = xp.astype(g, dtype)
            u = adam_direction(xp, m, v, previous.astype(xp, dtype))
            g_hat = g - xp.astype(scalars.nge[k], dtype) * u
            m_next = beta1 * m + (1.0 - beta1) * g_hat
            v_next = beta2 * v + (1.0 - beta2) * (g * g)
            direction = adam_direction(xp, m_next, v_next, current.astype(xp, dtype))
            p_next = xp.astype(p, dtype) * xp.astype(scalars.decay[k], dtype) \
                - xp.astype(scalars.step[k], dtype) * direction
            new_params.append(_result(xp, p, xp.astype(p_next, p.dtype), finite, inplace))
            new_avg.append(_result(xp, m, m_next, finite, inplace))
            new_avg_sq.append(_result(xp, v, v_next, finite, inplace))
        return new_params, new_avg, new_avg_sq


def _result(xp, old, new, keep_new, inplace: bool):
    """``new`` where ``keep_new`` else ``old``; written into ``old`` when ``inplace``."""
    chosen = xp.where(keep_new, new, old)
    if not inplace:
        return chosen
    old[...] = chosen
    return old


GENERIC = GenericKernels()

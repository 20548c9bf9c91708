"""The effective speed-up k (protocol v3's primary endpoint), one seed at a time.

AdamW trains at budgets f·B for the fractions ``FRACTIONS`` (each run its own full warmup + cosine
schedule); the optimizer under test trains at B. With AdamW's final test metric y(f) made monotone
in f (pool-adjacent-violators: more budget is never worse in expectation) and linear in log f
between the budgets, k is the smallest f at which AdamW is at least as good as the other
optimizer's final test metric: "it matches AdamW at k·B" (k > 1: it needs fewer steps;
the paper's "28 % fewer steps" is k = 1/0.72 ≈ 1.39). Outside [min f, max f] nothing is invented:
k is censored "above" (better than AdamW at the largest budget) or "below" (worse than AdamW at
the smallest; a diverged run too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FRACTIONS = (0.5, 0.7, 1.0, 1.4)


@dataclass(frozen=True)
class Effective:
    """k for one seed, or the side it is censored on ("above" / "below"), or "missing" (AdamW's
    curve has a diverged or absent run)."""

    k: float | None
    censored: str | None = None

    @property
    def log_k(self) -> float:
        """log k, ±inf when censored above / below (for ordering; never averaged)."""
        if self.k is not None:
            return math.log(self.k)
        return {"above": math.inf, "below": -math.inf}.get(self.censored or "", math.nan)


def isotonic(values: list[float]) -> list[float]:
    """The non-decreasing sequence closest to ``values`` in least squares (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, count]
    for v in values:
        blocks.append([v, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m1, n1), (m2, n2) = blocks[-2], blocks.pop()
            blocks[-1] = [(m1 * n1 + m2 * n2) / (n1 + n2), n1 + n2]
    return [m for m, n in blocks for _ in range(int(n))]


def effective(fractions, adamw_metrics, metric: float | None, higher_is_better: bool) -> Effective:
    """k of one seed from AdamW's final test metrics at ``fractions`` × B and the other optimizer's
    final test ``metric`` at B (see the module docstring)."""
    if len(fractions) != len(adamw_metrics) or len(fractions) < 2:
        raise ValueError(f"effective: need one AdamW metric per fraction (>= 2), got {fractions}, {adamw_metrics}")
    if any(m is None or not math.isfinite(m) for m in adamw_metrics):
        return Effective(None, "missing")
    if metric is None or not math.isfinite(metric):
        return Effective(None, "below")
    sign = 1.0 if higher_is_better else -1.0
    order = sorted(range(len(fractions)), key=lambda i: fractions[i])
    logs = [math.log(fractions[i]) for i in order]
    curve = isotonic([sign * adamw_metrics[i] for i in order])
    goal = sign * metric
    if goal > curve[-1]:
        return Effective(None, "above")
    if goal < curve[0]:
        return Effective(None, "below")
    j = next(i for i, y in enumerate(curve) if y >= goal)
    if j == 0:  # AdamW's smallest budget already matches
        return Effective(math.exp(logs[0]))
    share = (goal - curve[j - 1]) / (curve[j] - curve[j - 1])
    return Effective(math.exp(logs[j - 1] + share * (logs[j] - logs[j - 1])))

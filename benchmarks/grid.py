"""Protocol v3's tuning grid: the same trials for every optimizer (equal effort).

Every optimizer gets the full grid of ``LR_POINTS`` learning rates (log-spaced, ``LR_FACTOR``×
apart around a workload's ``center``) × weight decay ``WEIGHT_DECAYS`` × β2 ``BETA2S``, on the
tuning seed, read on the validation split. When the selected learning rate is the smallest or the
largest of the grid, the grid is extended by ``EXTEND`` points on that side and only the new points
run (a new round; every round stays in the records and the selection is over all of them), at most
``MAX_ROUNDS`` − 1 times. ``neat_tuned`` runs the same grid, with NEAT's own hyperparameters drawn
for trial ``i`` from the quasi-random sequence of :func:`benchmarks.tuning.trials` (same count).
"""

from __future__ import annotations

import math

LR_POINTS = 7
LR_FACTOR = 2.0
WEIGHT_DECAYS = (0.0, 0.1)
BETA2S = (0.95, 0.999)
EXTEND = 2
MAX_ROUNDS = 3


def learning_rates(center: float, points: int = LR_POINTS, factor: float = LR_FACTOR) -> list[float]:
    """``points`` learning rates ``factor``× apart, the middle one ``center``."""
    if points < 1 or center <= 0 or factor <= 1:
        raise ValueError(f"learning_rates: need points >= 1, center > 0, factor > 1 (got {points}, {center}, {factor})")
    low = -(points // 2)
    return [_round(center * factor ** (low + i)) for i in range(points)]


def _round(x: float) -> float:
    return float(f"{x:.4g}")


def extend(rates: list[float], side: str, points: int = EXTEND, factor: float = LR_FACTOR) -> list[float]:
    """``points`` new learning rates beyond the ``side`` ("low" / "high") end of ``rates``."""
    if side == "high":
        return [_round(max(rates) * factor ** (i + 1)) for i in range(points)]
    if side == "low":
        return [_round(min(rates) / factor ** (i + 1)) for i in range(points)]
    raise ValueError(f"side must be 'low' or 'high', got {side!r}")


def points(rates: list[float], decays=WEIGHT_DECAYS, beta2s=BETA2S) -> list[dict]:
    """The grid's hyperparameter dicts, learning rate fastest."""
    return [dict(lr=lr, weight_decay=wd, beta2=b2) for b2 in beta2s for wd in decays for lr in rates]


def edge(best_lr: float, rates: list[float]) -> str | None:
    """ "low" / "high" when ``best_lr`` is the grid's smallest / largest learning rate, else None."""
    if len(rates) < 2:
        return None
    if math.isclose(best_lr, max(rates)):
        return "high"
    if math.isclose(best_lr, min(rates)):
        return "low"
    return None


def neighbours(best_lr: float, rates: list[float], count: int = 1) -> list[float]:
    """``best_lr`` and the ``count`` grid rates on each side of it (the re-tuning set at another budget)."""
    ordered = sorted(rates)
    i = min(range(len(ordered)), key=lambda j: abs(math.log(ordered[j] / best_lr)))
    return ordered[max(0, i - count) : i + count + 1]

"""Quasi-random tuning trials (scrambled Halton), the same budget for every optimizer.

``lr`` and ``weight_decay`` come from one 2-D sequence shared by all optimizers (mapped into
each one's own ranges), so trial ``i`` of NEAT tries the same relative learning rate and decay as
trial ``i`` of AdamW; an optimizer's own hyperparameters come from a second sequence.

Edge check: when the selected trial has the smallest or the largest learning rate of its round,
the optimum may lie outside the range; :func:`widen` extends the range ``WIDEN_FACTOR``× on that
side and the protocol reruns the whole round there (same number of trials).
"""

from __future__ import annotations

import math

from scipy.stats import qmc

SHARED = ("lr", "weight_decay")


def _map(unit: float, rule) -> float:
    kind, low, high = rule
    if kind == "log":
        return math.exp(math.log(low) + unit * (math.log(high) - math.log(low)))
    if kind == "linear":
        return low + unit * (high - low)
    raise ValueError(f"unknown search rule {kind!r}")


def trials(space: dict, count: int, seed: int = 0) -> list[dict]:
    """``count`` hyperparameter dicts drawn from ``space``."""
    if count < 1:
        raise ValueError(f"trials: count must be >= 1, got {count}")
    shared = qmc.Halton(d=2, scramble=True, seed=seed).random(count)
    own_names = [k for k in space if k not in SHARED]
    own = qmc.Halton(d=len(own_names), scramble=True, seed=seed + 1).random(count) if own_names else None
    points = []
    for i in range(count):
        point = {name: _map(shared[i, j], space[name]) for j, name in enumerate(SHARED) if name in space}
        point.update({name: _map(own[i, j], space[name]) for j, name in enumerate(own_names)})
        points.append({k: float(f"{v:.4g}") for k, v in point.items()})
    return points


WIDEN_FACTOR = 10.0


def edge(best_hp: dict, points: list[dict], name: str = "lr") -> str | None:
    """ "low" / "high" when ``best_hp[name]`` is the smallest / largest value tried, else None."""
    values = [p[name] for p in points]
    if len(values) < 2:
        return None
    if best_hp[name] >= max(values):
        return "high"
    if best_hp[name] <= min(values):
        return "low"
    return None


def widen(space: dict, side: str, name: str = "lr", factor: float = WIDEN_FACTOR) -> dict:
    """``space`` with ``name``'s range extended ``factor``× on ``side`` ("low" or "high")."""
    kind, low, high = space[name]
    if side == "high":
        high = high * factor if kind == "log" else high + (high - low)
    elif side == "low":
        low = low / factor if kind == "log" else low - (high - low)
    else:
        raise ValueError(f"side must be 'low' or 'high', got {side!r}")
    return {**space, name: (kind, low, high)}

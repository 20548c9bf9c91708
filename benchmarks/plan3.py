"""Protocol v3's plan: which workloads, budgets, seeds, optimizers and widths, and how many runs
(in budget-lengths) each cell costs. Pure configuration; :mod:`benchmarks.protocol3` runs it.

* **Headline** (``HEADLINE``): W1 and W5 at 4000 steps, W3 at 3000; ``OPTIMIZERS`` each tuned on
  the full :mod:`benchmarks.grid` (equal effort), then ``SEEDS`` fresh seeds (1 … n) at the budget B;
  AdamW also at ``FRACTIONS`` × B (its learning rate re-tuned at each other fraction over the
  selected rate and its grid neighbours, same decay and β2).
* **Optional** (``OPTIONAL``): W2 if the budget allows; W4 enters the headline only if AdamW's
  curve resolves k there (:func:`benchmarks.analysis3.resolves`).
* **Size trend** (``size_cells``): W3 at ``V3_WIDTHS`` with the same ``TOKENS_PER_PARAM`` at every
  width (steps = tokens per parameter × parameters / (batch × context)), AdamW and NEAT each re-tuned
  on the learning-rate grid at every width (decay and β2: each optimizer's W3 headline selection),
  ``SIZE_SEEDS`` seeds per width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from benchmarks import grid
from benchmarks.effective import FRACTIONS
from benchmarks.workloads import V3_WIDTHS, W3_SIZE, WORKLOADS, w3_parameters

PROTOCOL = 3
SEEDS = 10
SIZE_SEEDS = 5
TOKENS_PER_PARAM = 5.0
OPTIMIZERS = ("adamw", "nadamw", "neat", "neat_search")  # neat_search: "NEAT tuned" (own hyperparameters too)
REFERENCE = "adamw"
PRIMARY = "neat"  # the headline comparison: NEAT with its library defaults (lr, decay, β2 tuned)
LR_CENTER = 4e-3
EVAL_FRACTION = 0.1  # the endpoint is the final metric; ten evaluations draw the curves
RETUNE_NEIGHBOURS = 1


@dataclass(frozen=True)
class Cell:
    """One workload of the plan. ``decays`` / ``beta2s`` None: the optimizer's selection on
    ``inherit`` (the size trend takes W3's)."""

    workload: str
    steps: int
    seeds: int
    optimizers: tuple[str, ...] = OPTIMIZERS
    part: str = "headline"
    lr_center: float = LR_CENTER
    lr_points: int = grid.LR_POINTS
    decays: tuple[float, ...] | None = grid.WEIGHT_DECAYS
    beta2s: tuple[float, ...] | None = grid.BETA2S
    inherit: str | None = None
    fractions: tuple[float, ...] = FRACTIONS

    def __post_init__(self):
        if self.workload not in WORKLOADS:
            raise ValueError(f"unknown workload {self.workload!r}")
        if REFERENCE not in self.optimizers or 1.0 not in self.fractions:
            raise ValueError(f"{self.workload}: a cell needs {REFERENCE} and the fraction 1.0")
        if (self.decays is None) != (self.inherit is not None):
            raise ValueError(f"{self.workload}: decays/beta2s None exactly when inherit names a workload")

    def steps_at(self, fraction: float) -> int:
        return max(1, round(fraction * self.steps))

    def budget_lengths(self) -> dict:
        """Runs of the cell in budget-lengths B (before any grid extension): ``tune`` (the grid for
        every optimizer), ``retune`` (AdamW at the other fractions), ``seeds`` (every optimizer at B,
        AdamW at every fraction)."""
        per_grid = self.lr_points * len(self.decays or (0,)) * len(self.beta2s or (0,))
        others = [f for f in self.fractions if f != 1.0]
        return dict(
            tune=per_grid * len(self.optimizers),
            retune=(2 * RETUNE_NEIGHBOURS + 1) * sum(others),
            seeds=self.seeds * (len(self.optimizers) + sum(others)),
        )


HEADLINE = (Cell("W1", 4000, SEEDS), Cell("W5", 4000, SEEDS), Cell("W3", 3000, SEEDS))
OPTIONAL = (Cell("W2", 1500, SEEDS, part="optional"), Cell("W4", 3000, SEEDS, part="optional"))


def size_steps(width: int, tokens_per_param: float = TOKENS_PER_PARAM, batch: int | None = None) -> int:
    """Steps that give W3 at ``width`` ``tokens_per_param`` training tokens per parameter."""
    batch = batch or WORKLOADS["W3"].batch_size
    return math.ceil(tokens_per_param * w3_parameters(width) / (batch * W3_SIZE["context"]))


def size_cells(
    widths=V3_WIDTHS, tokens_per_param: float = TOKENS_PER_PARAM, seeds: int = SIZE_SEEDS
) -> tuple[Cell, ...]:
    """The size trend's cells: same tokens per parameter at every width (see the module docstring)."""
    if tokens_per_param < 5:
        raise ValueError(f"the size trend needs at least 5 tokens per parameter, got {tokens_per_param}")
    if len(widths) < 4:
        raise ValueError(f"the size trend needs at least 4 widths, got {widths}")
    return tuple(
        Cell(
            f"W3-{w}",
            size_steps(w, tokens_per_param),
            seeds,
            (REFERENCE, PRIMARY),
            part="size",
            decays=None,
            beta2s=None,
            inherit="W3",
        )
        for w in widths
    )


SIZE = size_cells()


def cells(parts=("headline", "size")) -> tuple[Cell, ...]:
    """The plan's cells in the order they run (the size trend needs W3's headline tuning first)."""
    chosen = {"headline": HEADLINE, "optional": OPTIONAL, "size": SIZE}
    unknown = [p for p in parts if p not in chosen]
    if unknown:
        raise ValueError(f"unknown part(s) {unknown}; choose from {list(chosen)}")
    return tuple(c for p in ("headline", "optional", "size") if p in parts for c in chosen[p])

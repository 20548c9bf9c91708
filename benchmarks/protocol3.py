"""Protocol v3, run: equal-effort grid tuning, AdamW at several budgets, fresh seeds (the plan is
:mod:`benchmarks.plan3`, the analysis :mod:`benchmarks.analysis3`).

Per cell and optimizer: the :mod:`benchmarks.grid` on the tuning seed at budget B, read on the
validation split (round 0: the grid; a further round only when the selection sits at the grid's
edge, running the new learning rates only; every round is recorded and the selection is the best
**final** validation metric over all rounds, diverged runs never selected). AdamW is re-tuned at each
other budget fraction over the selected learning rate and its grid neighbours (same decay and β2).
Then every optimizer's selection on seeds 1 … n at B, and AdamW's at every fraction, evaluated on
validation and test. Records carry ``protocol: 3``, ``part``, ``budget_fraction`` and the source;
runs already recorded are skipped, so a stopped command resumes; ``deadline`` (a ``time.time()``)
stops cleanly before a run that would start after it.
"""

from __future__ import annotations

import math
import time

from benchmarks import grid, plan3, protocol, records, tuning
from benchmarks.optimizers import OPTIMIZERS
from benchmarks.plan3 import Cell

OWN_SHARED = ("lr", "weight_decay")


class OutOfTime(Exception):
    """The deadline passed; everything recorded so far is kept and the next call resumes."""


def select_final(runs: list[dict], higher_is_better: bool) -> dict | None:
    """The run with the best final validation metric (diverged or missing ones never win)."""
    ok = [r for r in runs if not r["diverged"] and r.get("final_val") is not None and math.isfinite(r["final_val"])]
    if not ok:
        return None
    return (max if higher_is_better else min)(ok, key=lambda r: r["final_val"])


def own_points(optimizer: str, count: int) -> list[dict]:
    """An optimizer's own hyperparameters for trials 0 … count−1 (empty dicts for those with none)."""
    space = {k: v for k, v in OPTIMIZERS[optimizer].space.items() if k not in OWN_SHARED}
    return tuning.trials(space, count) if space else [{} for _ in range(count)]


def inherited(results, cell: Cell, optimizer: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(decays, beta2s)`` for ``optimizer`` in ``cell``: its own, or the selection on ``cell.inherit``.

    The selection is taken only once the inherited cell's tuning is complete, every round of it:
    :meth:`CellRun.run` starts an optimizer's seeds after its tuning, so a seed record at B marks it."""
    if cell.inherit is None:
        assert cell.decays is not None and cell.beta2s is not None
        return cell.decays, cell.beta2s
    own = [
        r
        for r in records.load(records.path_for(results, cell.inherit))
        if r.get("protocol") == plan3.PROTOCOL and r["optimizer"] == optimizer and r.get("budget_fraction") == 1.0
    ]
    tuned = [r for r in own if r["phase"] == "tune"]
    complete = any(r["phase"] == "seed" for r in own)
    best = select_final(tuned, tuned[0]["higher_is_better"]) if tuned and complete else None
    if best is None:
        raise LookupError(
            f"{cell.workload} takes {optimizer}'s weight decay and beta2 from {cell.inherit}'s tuning, which is not "
            f"complete: run the headline part for {cell.inherit} first (its tuning is complete when its seeds begin)"
        )
    return (best["hp"]["weight_decay"],), (best["hp"]["beta2"],)


class CellRun:
    """One cell's runs through a :class:`benchmarks.protocol.Session` (resuming from its file)."""

    def __init__(self, cell: Cell, results, command: str = "", device: str = "cpu", deadline: float | None = None):
        self.cell, self.results, self.deadline = cell, results, deadline
        self.session = protocol.Session(
            cell.workload,
            results,
            cell.steps,
            command=command,
            device=device,
            version=plan3.PROTOCOL,
            eval_fraction=plan3.EVAL_FRACTION,
        )
        self.higher = self.session.workload.higher_is_better

    def _run(self, optimizer, hp, seed, phase, fraction, trial=None, round_=0, splits=("val", "test")) -> dict:
        steps = self.cell.steps_at(fraction)
        key = self.session.key(optimizer, hp, seed, phase, trial, round_, steps)
        if key not in self.session.done and self.deadline is not None and time.time() > self.deadline:
            raise OutOfTime(f"deadline passed before {self.cell.workload} {optimizer} {phase} seed {seed}")
        return self.session.run(
            optimizer,
            hp,
            seed,
            phase,
            trial=trial,
            round_=round_,
            steps=steps,
            splits=splits,
            extra=dict(part=self.cell.part, budget_fraction=fraction),
        )

    def tune(self, optimizer: str) -> tuple[dict | None, list[float]]:
        """Grid rounds at B on the tuning seed; returns the selection and every learning rate tried."""
        decays, beta2s = inherited(self.results, self.cell, optimizer)
        rates, new, runs = [], grid.learning_rates(self.cell.lr_center, self.cell.lr_points), []
        best = None
        for round_ in range(grid.MAX_ROUNDS):
            rates += new
            points = grid.points(new, decays, beta2s)
            own = own_points(optimizer, len(runs) + len(points))[len(runs) :]
            for hp, extra in zip(points, own):
                hp = {**hp, **extra}
                runs.append(self._run(optimizer, hp, protocol.TUNE_SEED, "tune", 1.0, len(runs), round_, ("val",)))
            best = select_final(runs, self.higher)
            side = grid.edge(best["hp"]["lr"], rates) if best is not None else None
            if side is None:
                break
            new = grid.extend(rates, side)
        return best, sorted(rates)

    def retune(self, best: dict, rates: list[float], fraction: float) -> dict | None:
        """AdamW at ``fraction`` × B over the selected learning rate and its grid neighbours."""
        runs = []
        for i, lr in enumerate(grid.neighbours(best["hp"]["lr"], rates, plan3.RETUNE_NEIGHBOURS)):
            hp = {**best["hp"], "lr": lr}
            runs.append(self._run(best["optimizer"], hp, protocol.TUNE_SEED, "tune", fraction, i, 0, ("val",)))
        return select_final(runs, self.higher)

    def seeds(self, best: dict, fraction: float) -> list[dict]:
        return [
            self._run(best["optimizer"], best["hp"], seed, "seed", fraction, best["trial"], best["round"])
            for seed in protocol.final_seeds(self.cell.seeds)
        ]

    def run(self) -> dict:
        """Every run of the cell; returns ``{optimizer: {fraction: selected record}}``."""
        chosen: dict = {}
        for optimizer in self.cell.optimizers:
            best, rates = self.tune(optimizer)
            if best is None:
                chosen[optimizer] = {}
                continue
            chosen[optimizer] = {1.0: best}
            if optimizer == plan3.REFERENCE:
                for fraction in self.cell.fractions:
                    if fraction != 1.0:
                        chosen[optimizer][fraction] = self.retune(best, rates, fraction)
            for fraction, selected in chosen[optimizer].items():
                if selected is not None:
                    self.seeds(selected, fraction)
        return chosen

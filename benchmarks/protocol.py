"""Protocol v2 (AlgoPerf-like; the same budget for every optimizer).

* **Schedule**: every optimizer, NEAT included, trains with the same linear warmup (5 %) and
  cosine decay to 0 (:mod:`benchmarks.schedule`); each record carries it.
* **Tuning**: ``trials`` (default 12) quasi-random points (:mod:`benchmarks.tuning`) on the tuning
  seed ``TUNE_SEED`` only, evaluated on the **validation** split; the selected trial is the one with
  the best validation metric (diverged trials never win). When it has the smallest or largest
  learning rate of the round, the range is widened ``tuning.WIDEN_FACTOR``× on that side and the
  whole round is rerun there (at most ``MAX_WIDEN`` times); selection uses the last round, and the
  report says when the choice is still at an edge.
* **Target** (AdamW only, rule ``TARGET_RULE``): AdamW's selected hyperparameters trained on
  ``TARGET_SEEDS`` for ``length`` × the budget (schedule stretched to that length); the workload's
  target is the median over those seeds of the best **test** metric a run reached within its first
  ``horizon`` × budget steps. Rule v2.1 (1× budget, horizon 0.75) replaced the registered v2.0
  (2× budget, horizon 1) before any variant's final seed ran: under cosine decay a 2× run is ahead
  of every 1× run at the budget, so AdamW's own final runs reached v2.0's target on 0–2 of 5 seeds.
  Under v2.1 AdamW reaches its target around three quarters of the budget, leaving room on both
  sides (the report checks this: AdamW's median fraction of the budget used).
* **Final seeds**: the selected trial rerun on ``FINAL_SEEDS`` (1 … n, never the tuning seed),
  evaluated on validation and the held-out **test** split; every result is read on test.
* Evaluation every ``workload.eval_every(steps)`` ≤ 2.5 % of the run.

Runs already in the results file are skipped (the key is workload, optimizer, phase, trial, round,
seed, steps, hyperparameters and schedule), so an interrupted command resumes.
"""

from __future__ import annotations

import math
import shlex
import sys
import time
from dataclasses import dataclass

from tqdm import tqdm

from benchmarks import provenance, records, tuning
from benchmarks.optimizers import OPTIMIZERS
from benchmarks.runner import machine, train
from benchmarks.schedule import DEFAULT as DEFAULT_SCHEDULE
from benchmarks.workloads import WORKLOADS

PROTOCOL = 2
DEFAULT_TRIALS = 12
DEFAULT_SEEDS = 5
TUNE_SEED = 0
TARGET_SEEDS = (101, 102, 103)


@dataclass(frozen=True)
class TargetRule:
    """How AdamW's target-setting runs make a workload's target (see the module docstring)."""

    name: str
    length: int  # the target-setting runs are this many budgets long
    horizon: float  # their best test metric counts within this fraction of the budget

    def steps(self, budget: int) -> int:
        return self.length * budget


TARGET_RULES = {
    "v2.0": TargetRule("v2.0", length=2, horizon=1.0),  # as registered; unreachable for AdamW itself
    "v2.1": TargetRule("v2.1", length=1, horizon=0.75),
}
TARGET_RULE = TARGET_RULES["v2.1"]
MAX_WIDEN = 2
REFERENCE = "adamw"

SWEEP = dict(
    gamma=[0.0, 0.25, 0.5, 1.0],
    zeta=[0.0, 0.01, 0.05, 0.2],
    mu=[0.0, 1.0, 10.0],
    step_bounds=[(0.8, 1.25), (0.5, 2.0), (0.25, 4.0)],
    leak=[0.0, 0.01, 0.1],
)


def final_seeds(count: int) -> list[int]:
    """The evaluation seeds: 1 … count (the tuning seed 0 and the target seeds are never among them)."""
    seeds = list(range(1, count + 1))
    assert TUNE_SEED not in seeds and not set(TARGET_SEEDS) & set(seeds), "seed roles overlap"
    return seeds


def command_line(argv) -> str:
    """The command that reproduces a run, as typed from the repository root."""
    return "python -m benchmarks " + shlex.join(argv)


class Session:
    """Runs and records for one workload, resuming from what the results file already holds."""

    def __init__(
        self,
        workload_name: str,
        results,
        steps: int | None = None,
        kind: str = "",
        command: str = "",
        device: str = "cpu",
        schedule=DEFAULT_SCHEDULE,
        version: int = PROTOCOL,
        eval_fraction: float | None = None,
    ):
        """``version``: the protocol the records carry (and the only ones resumed from);
        ``eval_fraction``: evaluate every that fraction of a run (default: the workload's)."""
        self.command = command
        self.version = version
        self.eval_fraction = eval_fraction
        self.workload = WORKLOADS[workload_name]
        self.device = device
        self.problem = self.workload.build(device)
        self.steps = steps or self.workload.steps
        self.schedule = schedule
        self.path = records.path_for(results, workload_name, kind)
        self.done = {records.key(r): r for r in records.load(self.path) if r.get("protocol") == version}
        self.machine = machine(device)
        self.provenance = provenance.current()

    def key(self, optimizer: str, hp: dict, seed: int, phase: str, trial, round_, steps: int):
        """The record key of a run of this session (:func:`records.key`): what makes a run already done."""
        return records.key(
            dict(
                workload=self.workload.name,
                optimizer=optimizer,
                phase=phase,
                trial=trial,
                round=round_,
                seed=seed,
                steps=steps,
                hp=hp,
                schedule=self.schedule.as_record(),
            )
        )

    def run(
        self,
        optimizer: str,
        hp: dict,
        seed: int,
        phase: str,
        trial=None,
        round_=0,
        steps: int | None = None,
        splits=("val", "test"),
        bar=None,
        extra: dict | None = None,
    ) -> dict:
        steps = steps or self.steps
        key = self.key(optimizer, hp, seed, phase, trial, round_, steps)
        if key in self.done:
            if bar is not None:
                bar.update(steps)
            return self.done[key]
        started = time.time()
        every = max(1, int(self.eval_fraction * steps)) if self.eval_fraction else None
        record = train(
            self.workload,
            self.problem,
            optimizer,
            hp,
            seed,
            steps,
            progress=bar,
            schedule=self.schedule,
            splits=splits,
            eval_every=every,
        )
        record.update(
            protocol=self.version,
            phase=phase,
            trial=trial,
            round=round_,
            budget_steps=self.steps,
            wall_time_s=round(time.time() - started, 2),
            machine=self.machine,
            source=self.provenance,
            command=self.command,
            recorded_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **(extra or {}),
        )
        records.append(self.path, record)
        self.done[records.key(record)] = record
        return record


def selected(tune_records: list[dict], higher_is_better: bool) -> dict | None:
    """The tuning run with the best validation metric (None when every trial diverged)."""
    ok = [
        r for r in tune_records if r.get("best_val") is not None and math.isfinite(r["best_val"]) and not r["diverged"]
    ]
    if not ok:
        return None
    return (max if higher_is_better else min)(ok, key=lambda r: r["best_val"])


def tune(session: Session, optimizer: str, trials: int, bar=None) -> tuple[list[dict], dict | None, str | None]:
    """Tuning rounds on the tuning seed (validation split only); returns the last round's records,
    the selected one, and the edge it is still at (None: inside the range)."""
    space = OPTIMIZERS[optimizer].space
    for round_ in range(MAX_WIDEN + 1):
        points = tuning.trials(space, trials)
        tuned = [
            session.run(
                optimizer,
                hp,
                TUNE_SEED,
                "tune",
                trial=i,
                round_=round_,
                splits=("val",),
                bar=bar,
                extra=dict(space={k: list(v) for k, v in space.items()}),
            )
            for i, hp in enumerate(points)
        ]
        best = selected(tuned, session.workload.higher_is_better)
        side = tuning.edge(best["hp"], points) if best is not None else None
        if side is None or round_ == MAX_WIDEN:
            return tuned, best, side
        space = tuning.widen(space, side)
        if bar is not None:
            bar.total += trials * session.steps
    return tuned, best, side


def set_target(session: Session, best: dict, bar=None) -> list[dict]:
    """AdamW's target-setting runs under ``TARGET_RULE`` (its selected hyperparameters)."""
    return [
        session.run(
            REFERENCE,
            best["hp"],
            seed,
            "target",
            trial=best["trial"],
            round_=best["round"],
            steps=TARGET_RULE.steps(session.steps),
            bar=bar,
        )
        for seed in TARGET_SEEDS
    ]


def tune_and_seed(session: Session, optimizer: str, trials: int, seeds: int) -> list[dict]:
    """Tuning, (AdamW: target runs,) then the selected trial on the final seeds; returns all records."""
    total = (trials + seeds + (TARGET_RULE.length * len(TARGET_SEEDS) if optimizer == REFERENCE else 0)) * session.steps
    with tqdm(
        total=total,
        desc=f"{session.workload.name} {optimizer}",
        unit="step",
        leave=False,
        file=sys.stderr,
        disable=None,
    ) as bar:
        tuned, best, side = tune(session, optimizer, trials, bar=bar)
        if best is None:
            print(f"{session.workload.name} {optimizer}: every tuning trial diverged", file=sys.stderr)
            return tuned
        if side is not None:
            print(
                f"{session.workload.name} {optimizer}: selected lr {best['hp']['lr']:.3g} is still at the {side} "
                f"edge after {MAX_WIDEN} widenings",
                file=sys.stderr,
            )
        out = list(tuned)
        if optimizer == REFERENCE:
            out += set_target(session, best, bar=bar)
        out += [
            session.run(optimizer, best["hp"], s, "seed", trial=best["trial"], round_=best["round"], bar=bar)
            for s in final_seeds(seeds)
        ]
        return out


def sweep(session: Session, base_hp: dict, seeds: int, names=None) -> list[dict]:
    """NEAT with one hyperparameter moved at a time from the defaults (lr, decay from ``base_hp``)."""
    from neat.config import DEFAULTS

    defaults = {k: list(v) if isinstance(v, tuple) else v for k, v in DEFAULTS.items() if k in SWEEP}
    configs = [{}]
    for name in names or SWEEP:
        configs += [{name: v} for v in SWEEP[name] if v != DEFAULTS[name]]
    out = []
    with tqdm(
        total=len(configs) * seeds * session.steps,
        desc=f"{session.workload.name} sweep",
        unit="step",
        leave=False,
        disable=None,
        file=sys.stderr,
    ) as bar:
        for change in configs:
            hp = {**base_hp, **defaults, **{k: list(v) if isinstance(v, tuple) else v for k, v in change.items()}}
            out += [session.run("neat", hp, s, "sweep", trial=None, bar=bar) for s in final_seeds(seeds)]
    return out

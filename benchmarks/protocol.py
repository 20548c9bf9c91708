"""The AlgoPerf-like protocol: tune on seed 0, then rerun the selected trial on more seeds.

* Tuning: ``trials`` quasi-random points (:mod:`benchmarks.tuning`) on seed 0; the selected
  trial is the one with the best validation metric (diverged trials never win).
* Seeds: the selected hyperparameters on seeds ``1 … seeds−1``; seed 0 is the tuning run itself.
* Defaults sweep: NEAT's own hyperparameters varied one at a time around the defaults, at the
  learning rate and weight decay selected for AdamW, on every seed.

Runs already in the results file are skipped, so an interrupted command resumes.
"""

from __future__ import annotations

import math
import shlex
import sys
import time

from tqdm import tqdm

from benchmarks import records, tuning
from benchmarks.optimizers import OPTIMIZERS
from benchmarks.runner import machine, train
from benchmarks.workloads import WORKLOADS

SWEEP = dict(
    gamma=[0.0, 0.25, 0.5, 1.0],
    zeta=[0.0, 0.01, 0.05, 0.2],
    mu=[0.0, 1.0, 10.0],
    step_bounds=[(0.8, 1.25), (0.5, 2.0), (0.25, 4.0)],
    leak=[0.0, 0.01, 0.1],
)


def command_line(argv) -> str:
    """The command that reproduces a run, as typed from the repository root."""
    return "python -m benchmarks " + shlex.join(argv)


class Session:
    """Runs and records for one workload, resuming from what the results file already holds."""

    def __init__(self, workload_name: str, results, steps: int | None = None, kind: str = "", command: str = ""):
        self.command = command
        self.workload = WORKLOADS[workload_name]
        self.problem = self.workload.build()
        self.steps = steps or self.workload.steps
        self.path = records.path_for(results, workload_name, kind)
        self.done = {records.key(r): r for r in records.load(self.path)}
        self.machine = machine()

    def run(self, optimizer: str, hp: dict, seed: int, phase: str, trial=None, bar=None) -> dict:
        probe = dict(
            workload=self.workload.name,
            optimizer=optimizer,
            phase=phase,
            trial=trial,
            seed=seed,
            steps=self.steps,
            hp=hp,
        )
        if records.key(probe) in self.done:
            if bar is not None:
                bar.update(self.steps)
            return self.done[records.key(probe)]
        started = time.time()
        record = train(self.workload, self.problem, optimizer, hp, seed, self.steps, progress=bar)
        record.update(
            phase=phase,
            trial=trial,
            wall_time_s=round(time.time() - started, 2),
            machine=self.machine,
            command=self.command,
            recorded_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        records.append(self.path, record)
        self.done[records.key(record)] = record
        return record


def selected(tune_records: list[dict], higher_is_better: bool) -> dict | None:
    """The tuning run with the best validation metric (None when every trial diverged)."""
    ok = [
        r
        for r in tune_records
        if r["best_metric"] is not None and math.isfinite(r["best_metric"]) and not r["diverged"]
    ]
    if not ok:
        return None
    return (max if higher_is_better else min)(ok, key=lambda r: r["best_metric"])


def tune_and_seed(session: Session, optimizer: str, trials: int, seeds: int) -> list[dict]:
    """Tuning on seed 0, then the selected trial on seeds 1..seeds-1; returns all records."""
    points = tuning.trials(OPTIMIZERS[optimizer].space, trials)
    with tqdm(
        total=(trials + seeds - 1) * session.steps,
        desc=f"{session.workload.name} {optimizer}",
        unit="step",
        leave=False,
        file=sys.stderr,
    ) as bar:
        tuned = [session.run(optimizer, hp, 0, "tune", trial=i, bar=bar) for i, hp in enumerate(points)]
        best = selected(tuned, session.workload.higher_is_better)
        if best is None:
            return tuned
        return tuned + [
            session.run(optimizer, best["hp"], s, "seed", trial=best["trial"], bar=bar) for s in range(1, seeds)
        ]


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
        file=sys.stderr,
    ) as bar:
        for change in configs:
            hp = {**base_hp, **defaults, **{k: list(v) if isinstance(v, tuple) else v for k, v in change.items()}}
            out += [session.run("neat", hp, s, "sweep", trial=None, bar=bar) for s in range(seeds)]
    return out

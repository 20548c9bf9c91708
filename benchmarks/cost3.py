"""What protocol v3 costs on this machine: each cell's runs in budget-lengths (:mod:`benchmarks.plan3`)
times a measured run of that cell's model.

A cell's run time is ``per_step × steps`` + the protocol's evaluations (``1 / EVAL_FRACTION`` + 1),
both measured on a short run (``STEPS`` steps, AdamW and NEAT averaged, evaluated at its start and
end): ``per_step`` from the run's own clock (forward, backward, step), an evaluation from the rest
of its wall time.
"""

from __future__ import annotations

import time

from benchmarks import plan3
from benchmarks.runner import train
from benchmarks.workloads import WORKLOADS, available

STEPS = 40


def run_seconds(cell: plan3.Cell, device: str = "cpu") -> tuple[float, float]:
    """``(one evaluation, per_step)`` seconds of ``cell``'s model (see the module docstring)."""
    workload = WORKLOADS[cell.workload]
    problem = workload.build(device)
    evaluation, per_step = 0.0, 0.0
    for optimizer in (plan3.REFERENCE, plan3.PRIMARY):
        hp = dict(lr=1e-3, weight_decay=0.1, beta2=0.95)
        train(workload, problem, optimizer, hp, 0, 2, eval_every=2)  # warm: first-call and compile costs
        start = time.perf_counter()
        record = train(workload, problem, optimizer, hp, 0, STEPS, eval_every=STEPS)
        wall = time.perf_counter() - start
        per_step += record["train_time_s"] / STEPS / 2
        evaluation += max(0.0, wall - record["train_time_s"]) / 2 / 2
    return evaluation, per_step


def cell_hours(cell: plan3.Cell, evaluation: float, per_step: float) -> dict:
    """CPU-hours of each kind of run in ``cell`` (one thread)."""
    evaluations = 1 / plan3.EVAL_FRACTION + 1
    budget_run = per_step * cell.steps + evaluation * evaluations
    return {kind: lengths * budget_run / 3600 for kind, lengths in cell.budget_lengths().items()}


def estimate(cells, device: str = "cpu", out=print) -> float:
    """Print each cell's cost and the total; returns the total CPU-hours of the cells estimated."""
    total = 0.0
    for cell in cells:
        ok, why = available(WORKLOADS[cell.workload])
        if not ok:
            out(f"{cell.workload}: not estimated — {why}")
            continue
        evaluation, per_step = run_seconds(cell, device)
        hours = cell_hours(cell, evaluation, per_step)
        total += sum(hours.values())
        out(
            f"{cell.workload} ({cell.part}): B = {cell.steps} steps, {per_step * 1e3:.1f} ms/step, {evaluation:.2f} s "
            f"per evaluation; runs in budget-lengths {cell.budget_lengths()}; "
            + ", ".join(f"{k} {v:.2f} h" for k, v in hours.items())
            + f"; cell {sum(hours.values()):.2f} h"
        )
    out(
        f"total {total:.2f} CPU-hours (one thread each; two processes on two cores: about {total / 2:.2f} h of wall "
        "time), before any grid extension (each extension adds 2 learning rates × the decays × the β2s)"
    )
    return total

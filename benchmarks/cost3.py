"""What protocol v3 costs on this machine: each cell's runs in budget-lengths (:mod:`benchmarks.plan3`)
times a measured run of that cell's model.

A cell's run time is fitted as ``fixed + per_step × steps`` from two short runs (``SHORT`` and
``LONG`` steps, AdamW and NEAT averaged, evaluated at the start and the end); a full run adds the
protocol's evaluations (``1 / EVAL_FRACTION`` + 1 of them, each costing half the fixed part).
"""

from __future__ import annotations

import time

from benchmarks import plan3
from benchmarks.runner import train
from benchmarks.workloads import WORKLOADS, available

SHORT, LONG = 5, 25


def run_seconds(cell: plan3.Cell, device: str = "cpu") -> tuple[float, float]:
    """``(fixed, per_step)`` seconds of one run of ``cell``'s model (see the module docstring)."""
    workload = WORKLOADS[cell.workload]
    problem = workload.build(device)
    times = {}
    for steps in (SHORT, LONG):
        total = 0.0
        for optimizer in (plan3.REFERENCE, plan3.PRIMARY):
            start = time.perf_counter()
            train(workload, problem, optimizer, dict(lr=1e-3, weight_decay=0.1, beta2=0.95), 0, steps, eval_every=steps)
            total += time.perf_counter() - start
        times[steps] = total / 2
    per_step = max(0.0, (times[LONG] - times[SHORT]) / (LONG - SHORT))
    return max(0.0, times[SHORT] - SHORT * per_step), per_step


def cell_hours(cell: plan3.Cell, fixed: float, per_step: float) -> dict:
    """CPU-hours of each kind of run in ``cell`` (one thread)."""
    evaluations = 1 / plan3.EVAL_FRACTION + 1
    budget_run = per_step * cell.steps + fixed / 2 * evaluations
    return {kind: lengths * budget_run / 3600 for kind, lengths in cell.budget_lengths().items()}


def estimate(cells, device: str = "cpu", out=print) -> float:
    """Print each cell's cost and the total; returns the total CPU-hours of the cells estimated."""
    total = 0.0
    for cell in cells:
        ok, why = available(WORKLOADS[cell.workload])
        if not ok:
            out(f"{cell.workload}: not estimated — {why}")
            continue
        fixed, per_step = run_seconds(cell, device)
        hours = cell_hours(cell, fixed, per_step)
        total += sum(hours.values())
        out(
            f"{cell.workload} ({cell.part}): B = {cell.steps} steps, {per_step * 1e3:.1f} ms/step + {fixed:.2f} s "
            f"per evaluation pair; runs in budget-lengths {cell.budget_lengths()}; "
            + ", ".join(f"{k} {v:.2f} h" for k, v in hours.items())
            + f"; cell {sum(hours.values()):.2f} h"
        )
    out(
        f"total {total:.2f} CPU-hours (one thread each; two processes on two cores: about {total / 2:.2f} h of wall "
        "time), before any grid extension (each extension adds 2 learning rates × the decays × the β2s)"
    )
    return total

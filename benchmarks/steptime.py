"""Cost of one training step per optimizer, measured side by side with ``torch.optim.AdamW(fused=True)``.

All optimizers of a workload run in the same process, interleaved round by round (AdamW, then each
candidate, then the next round), so they share whatever load the machine has; the headline uses
the median over rounds of the per-round ratio to AdamW. The timed section is the one of
:mod:`benchmarks.runner`: the schedule's lr write, forward, backward and the optimizer step (on
CUDA, synchronised). Each optimizer uses its default hyperparameters (NEAT: the library defaults)
and a peak learning rate of 1e-3 (SGD: 1e-2) on the workload's model.
"""

from __future__ import annotations

import statistics

import torch

from benchmarks.optimizers import OPTIMIZERS
from benchmarks.runner import _clock
from benchmarks.schedule import DEFAULT as DEFAULT_SCHEDULE
from benchmarks.schedule import apply as apply_schedule
from benchmarks.timing import Log, interleaved

WARMUP = 5
REFERENCE = "adamw"


def _one_round(workload, problem, name: str, steps: int) -> float:
    torch.manual_seed(0)
    model = problem.model_factory()
    optimizer = OPTIMIZERS[name].make(model, {"lr": 1e-3} if name != "sgdm" else {"lr": 1e-2})
    peaks = [group["lr"] for group in optimizer.param_groups]
    batches = torch.Generator().manual_seed(0)
    clock = _clock(problem.device)
    elapsed, total = 0.0, WARMUP + steps
    for step in range(1, total + 1):
        batch = problem.sample(batches, workload.batch_size)
        start = clock()
        apply_schedule(optimizer, peaks, DEFAULT_SCHEDULE.factor(step, total))
        loss = problem.loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step > WARMUP:
            elapsed += clock() - start
    return 1000 * elapsed / steps


def measure(workload, problem, names: list[str], steps: int, rounds: int) -> dict:
    """``{optimizer: [ms per step, one per round]}``; AdamW (fused) is always measured, first in
    every round."""
    log = Log()

    def one_round(name):
        return lambda: log.record(round(_one_round(workload, problem, name, steps), 4))

    names = [REFERENCE, *[n for n in names if n != REFERENCE]]
    return interleaved({name: one_round(name) for name in names}, rounds, clocks=[log])[0].samples


def ratios(times: dict) -> dict:
    """``{optimizer: median over rounds of (its ms / AdamW's ms in the same round)}``."""
    ref = times[REFERENCE]
    return {name: statistics.median(a / b for a, b in zip(v, ref)) for name, v in times.items()}


def median_ms(times: list[float]) -> float:
    return statistics.median(times)

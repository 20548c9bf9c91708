"""Cost of one training step per optimizer, measured fairly: all optimizers of a workload in the
same process, interleaved round by round, so they share whatever load the machine has.

The timed section is forward + backward + optimizer step, as in :mod:`benchmarks.runner`; each
optimizer uses its default hyperparameters (NEAT: the library defaults) on the workload's model.
"""

from __future__ import annotations

import statistics
import time

import torch

from benchmarks.optimizers import OPTIMIZERS

WARMUP = 5


def _one_round(workload, problem, name: str, steps: int) -> float:
    torch.manual_seed(0)
    model = problem.model_factory()
    optimizer = OPTIMIZERS[name].make(model, {"lr": 1e-3} if name != "sgdm" else {"lr": 1e-2})
    batches = torch.Generator().manual_seed(0)
    elapsed = 0.0
    for step in range(WARMUP + steps):
        batch = problem.sample(batches, workload.batch_size)
        start = time.perf_counter()
        loss = problem.loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= WARMUP:
            elapsed += time.perf_counter() - start
    return 1000 * elapsed / steps


def measure(workload, problem, names: list[str], steps: int, rounds: int) -> dict:
    """``{optimizer: [ms per step, one per round]}``."""
    times = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            times[name].append(round(_one_round(workload, problem, name, steps), 4))
    return times


def median_ms(times: list[float]) -> float:
    return statistics.median(times)

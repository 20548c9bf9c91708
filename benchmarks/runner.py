"""One training run: seeded model and batches, timed steps, periodic evaluation and diagnostics.

The clock measures only forward, backward, the schedule's lr write and the optimizer step (AlgoPerf
excludes evaluation time); evaluation and the alignment/step-scale traces are taken outside it.
These in-run seconds depend on the load at the time; seconds-to-target in the report come from
``python -m benchmarks steptime`` (every optimizer side by side with AdamW in one process).
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from collections.abc import Callable

import torch

from benchmarks.optimizers import OPTIMIZERS
from benchmarks.probe import adam_alignment
from benchmarks.schedule import DEFAULT as DEFAULT_SCHEDULE
from benchmarks.schedule import Schedule
from benchmarks.schedule import apply as apply_schedule
from benchmarks.workloads import Workload
from neat.adapters.torch_adapter import module_layout

TRACE_POINTS = 40  # alignment / step-scale samples per run


def machine(device: str = "cpu") -> dict:
    """Where a run ran: enough to tell a 2-core VM from anything else."""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    return dict(
        cpu=cpu,
        cores=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        numba_threads=os.environ.get("NUMBA_NUM_THREADS"),
        affinity=sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        python=sys.version.split()[0],
        torch=torch.__version__,
        platform=platform.platform(),
        device=str(device),
        gpu=torch.cuda.get_device_name(device) if str(device).startswith("cuda") else None,
    )


def _finite(value, digits=5):
    """A metric for JSON: rounded, or None when missing or not finite (a diverged run)."""
    return round(value, digits) if value is not None and math.isfinite(value) else None


def _rounded(values, digits=4):
    return [round(float(v), digits) for v in values]


def _clock(device: str):
    """``perf_counter`` that first waits for queued GPU work (a CUDA step is asynchronous)."""
    if str(device).startswith("cuda"):

        def now():
            torch.cuda.synchronize()
            return time.perf_counter()

        return now
    return time.perf_counter


def train(
    workload: Workload,
    problem,
    optimizer_name: str,
    hp: dict,
    seed: int,
    steps: int | None = None,
    progress=None,
    schedule: Schedule = DEFAULT_SCHEDULE,
    splits: tuple[str, ...] = ("val", "test"),
    eval_every: int | None = None,
    at_end: Callable[[torch.nn.Module, torch.optim.Optimizer], dict] | None = None,
) -> dict:
    """Train once and return the JSON-ready record (without protocol fields).

    Every optimizer's learning rate follows ``schedule`` (peak ``hp["lr"]``). Evaluations at step 0,
    every ``eval_every`` steps (default ``workload.eval_every(steps)``) and at the last step read each
    split in ``splits`` ("val": trial selection; "test": targets and results). ``at_end(model,
    optimizer)``, when given, inspects the trained state; its answer is the record's ``at_end``."""
    spec = OPTIMIZERS[optimizer_name]
    steps = steps or workload.steps
    eval_every = eval_every or workload.eval_every(steps)
    trace_every = max(1, steps // TRACE_POINTS)
    torch.manual_seed(seed)
    model = problem.model_factory()
    optimizer = spec.make(model, hp)
    peaks = [group["lr"] for group in optimizer.param_groups]
    layout = module_layout(model)  # the players NGAdam(model) uses; the AdamW probe uses them too
    params, players = list(layout.tensors), [list(group) for group in layout.players]
    batches = torch.Generator().manual_seed(10_000 + seed)
    clock = _clock(problem.device)
    metric = workload.metric

    evals, trace = [], dict(step=[], mean_alignment=[], alignment=[], step_scale=[])
    train_time, recent, diverged = 0.0, [], False

    def evaluate(step):
        model.eval()
        row = dict(step=step, time_s=round(train_time, 4), lr_factor=round(factor, 6))
        row["train_loss"] = _finite(sum(recent) / len(recent)) if recent else None
        for split in splits:
            row[split] = {k: _finite(v) for k, v in problem.evaluate(model, split).items()}
        model.train()
        evals.append(row)
        recent.clear()

    factor = 0.0
    evaluate(0)
    for step in range(1, steps + 1):
        batch = problem.sample(batches, workload.batch_size)
        factor = schedule.factor(step, steps)
        start = clock()
        apply_schedule(optimizer, peaks, factor)
        loss = problem.loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        probe_now = step % trace_every == 0
        if probe_now and spec.adam_probe:
            train_time += clock() - start
            align = adam_alignment(optimizer, params, players)
            start = clock()
        optimizer.step()
        train_time += clock() - start
        recent.append(loss.item())
        if not math.isfinite(recent[-1]):
            diverged = True
            evaluate(step)
            break
        if probe_now:
            trace["step"].append(step)
            if spec.is_neat:
                info = optimizer.diagnostics()
                trace["alignment"].append(_rounded(info["alignment"]))
                trace["step_scale"].append(_rounded(info["step_scale"]))
            elif spec.adam_probe:
                trace["alignment"].append(_rounded(align))
            if trace["alignment"]:
                trace["mean_alignment"].append(round(sum(trace["alignment"][-1]) / len(players), 4))
        if step % eval_every == 0 or step == steps:
            evaluate(step)
        if progress is not None:
            progress.update(1)
    summary = {}
    for split in splits:
        values = [e[split][metric] for e in evals if e[split][metric] is not None]
        best = (max if workload.higher_is_better else min)(values) if values else None
        summary[f"best_{split}"] = None if diverged and split == "val" else best
        summary[f"final_{split}"] = evals[-1][split][metric]
    return dict(
        workload=workload.name,
        optimizer=optimizer_name,
        hp=hp,
        fixed=spec.fixed,
        seed=seed,
        steps=steps,
        batch_size=workload.batch_size,
        metric=metric,
        higher_is_better=workload.higher_is_better,
        schedule=schedule.as_record(),
        eval_every=eval_every,
        splits=list(splits),
        **summary,
        diverged=diverged,
        train_time_s=round(train_time, 3),
        evals=evals,
        players=list(layout.player_names),
        trace=trace,
        implementation=spec.implementation,
        device=problem.device,
        scale=workload.scale,
        **({"at_end": at_end(model, optimizer)} if at_end else {}),
    )

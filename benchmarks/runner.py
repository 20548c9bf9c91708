"""One training run: seeded model and batches, timed steps, periodic evaluation and diagnostics.

The clock measures only forward, backward and the optimizer step (AlgoPerf excludes evaluation
time); evaluation and the alignment/step-scale traces are taken outside it.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
import time

import torch

from benchmarks.optimizers import NEAT_IMPLEMENTATION, OPTIMIZERS
from benchmarks.probe import adam_alignment
from benchmarks.workloads import Workload
from neat.adapters.torch_adapter import module_layout

TRACE_POINTS = 40  # alignment / step-scale samples per run


def machine() -> dict:
    """Where a run ran: enough to tell a 2-core VM from anything else."""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    return dict(
        cpu=cpu,
        cores=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        python=sys.version.split()[0],
        torch=torch.__version__,
        platform=platform.platform(),
        git=_git_revision(),
    )


def neat_source_digest() -> str:
    """A hash of the NEAT sources a torch run executes (the working tree, not just HEAD)."""
    import hashlib
    from pathlib import Path

    import neat

    root = Path(neat.__file__).resolve().parent.parent
    files = sorted((root / "neat").glob("*.py")) + [
        root / "backends" / "torch_backend.py",
        root / "adapters" / "torch_adapter.py",
    ]
    digest = hashlib.sha256()
    for path in files:
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _finite(value, digits=5):
    """A metric for JSON: rounded, or None when missing or not finite (a diverged run)."""
    return round(value, digits) if value is not None and math.isfinite(value) else None


def _rounded(values, digits=4):
    return [round(float(v), digits) for v in values]


def train(
    workload: Workload, problem, optimizer_name: str, hp: dict, seed: int, steps: int | None = None, progress=None
) -> dict:
    """Train once and return the JSON-ready record (without protocol fields)."""
    spec = OPTIMIZERS[optimizer_name]
    steps = steps or workload.steps
    eval_every = max(1, min(workload.eval_every, steps // 5))
    trace_every = max(1, steps // TRACE_POINTS)
    torch.manual_seed(seed)
    model = problem.model_factory()
    optimizer = spec.make(model, hp)
    layout = module_layout(model)  # the players NGAdam(model) uses; the AdamW probe uses them too
    params, players = list(layout.tensors), [list(group) for group in layout.players]
    batches = torch.Generator().manual_seed(10_000 + seed)

    evals, trace = [], dict(step=[], mean_alignment=[], alignment=[], step_scale=[])
    train_time, recent, diverged = 0.0, [], False

    def evaluate(step):
        model.eval()
        metrics = problem.evaluate(model)
        model.train()
        loss = sum(recent) / len(recent) if recent else None
        evals.append(
            dict(
                step=step,
                time_s=round(train_time, 4),
                train_loss=_finite(loss),
                **{k: _finite(v) for k, v in metrics.items()},
            )
        )
        recent.clear()

    evaluate(0)
    for step in range(1, steps + 1):
        batch = problem.sample(batches, workload.batch_size)
        start = time.perf_counter()
        loss = problem.loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        probe_now = step % trace_every == 0
        if probe_now and spec.adam_probe:
            train_time += time.perf_counter() - start
            align = adam_alignment(optimizer, params, players)
            start = time.perf_counter()
        optimizer.step()
        train_time += time.perf_counter() - start
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
    best = [e[workload.metric] for e in evals if e[workload.metric] is not None]
    best_metric = (max if workload.higher_is_better else min)(best) if best else None
    return dict(
        workload=workload.name,
        optimizer=optimizer_name,
        hp=hp,
        fixed=spec.fixed,
        seed=seed,
        steps=steps,
        batch_size=workload.batch_size,
        metric=workload.metric,
        higher_is_better=workload.higher_is_better,
        best_metric=best_metric,
        final_metric=evals[-1][workload.metric],
        diverged=diverged,
        train_time_s=round(train_time, 3),
        evals=evals,
        players=list(layout.player_names),
        trace=trace,
        neat_impl=NEAT_IMPLEMENTATION if spec.is_neat else None,
        neat_source=neat_source_digest() if spec.is_neat else None,
        scale=workload.scale,
    )

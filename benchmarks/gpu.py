"""The prepared one-GPU run (``python -m benchmarks gpu``): three parts inside ``limit`` seconds,
a JSON line in ``OUT/gpu.jsonl`` after every step of the way.

(a) the conformance suite's CUDA, CuPy and Triton rows (``--neat-backend=torch-cuda,cupy``: the
    torch-cuda rows run every registered kernel set, Triton's included), in a subprocess with a
    time limit; (b) one optimizer step against ``AdamW(fused=True)`` at GPT-2-small shapes,
    interleaved (:func:`benchmarks.cuda_step.median_times`); (c) a byte-level GPT
    (:class:`benchmarks.workloads.ByteTransformer`, context 256, bf16 autocast) at about 3M and 19M
    parameters with AdamW (fused) and NEAT, ``SEEDS`` seeds each, interleaved seed by seed so a cut
    leaves pairs, each run stopped cleanly at its share of the time left (``truncated: true``).

``--dry-run`` runs all three at toy sizes on the CPU (conformance: collection only), which the test
suite does.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks import records

SEEDS = (1, 2, 3)
MARGIN_S = 20.0  # stop this long before the limit


@dataclass(frozen=True)
class GPT:
    name: str
    width: int
    layers: int
    heads: int
    context: int
    batch: int
    steps: int
    lr: float


SIZES = (GPT("3M", 256, 4, 4, 256, 64, 1500, 2e-3), GPT("19M", 512, 6, 8, 256, 64, 1500, 1e-3))
TOY = (GPT("toy-a", 16, 1, 2, 32, 4, 4, 2e-3), GPT("toy-b", 32, 1, 2, 32, 4, 4, 1e-3))


class Clock:
    """Seconds left before ``limit`` − ``MARGIN_S`` from the start."""

    def __init__(self, limit: float):
        self.end = time.monotonic() + limit - MARGIN_S

    def left(self) -> float:
        return self.end - time.monotonic()


def conformance(dry_run: bool, timeout: float) -> dict:
    """Part (a): pytest on the conformance suite's CUDA/CuPy/Triton rows (collection only when dry)."""
    argv = [sys.executable, "-m", "pytest", "--pyargs", "neat.conformance", "--neat-backend=torch-cuda,cupy"]
    argv += ["-q", "-p", "no:cacheprovider", *(["--collect-only"] if dry_run else [])]
    start = time.monotonic()
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=max(1.0, timeout))
        code, tail = out.returncode, (out.stdout + out.stderr)[-3000:]
    except subprocess.TimeoutExpired as stop:
        code, tail = None, f"stopped after {timeout:.0f} s: {str(stop.stdout or '')[-3000:]}"
    return dict(command=" ".join(argv[1:]), returncode=code, seconds=round(time.monotonic() - start, 1), tail=tail)


def step_times(device: str, dry_run: bool) -> dict:
    """Part (b): ms per step of each candidate at GPT-2-small shapes (toy shapes when dry)."""
    from benchmarks import cuda_step
    from benchmarks.shapes import gpt2_modules, per_module

    modules = per_module(gpt2_modules(layers=1, width=32, vocab=64, context=16) if dry_run else gpt2_modules())
    steps, warmup = (3, 1) if dry_run else (50, 5)
    rows = cuda_step.candidates(["foreach"], warmup)
    rows = rows[:3] if dry_run else rows  # the Triton and CUDA-graph rows need a GPU
    ms = cuda_step.median_times(rows, modules, steps, warmup, device)
    base = ms[0]
    return {label: dict(ms=t, ratio=None if t is None or base is None else t / base) for (label, _), t in zip(rows, ms)}


def _optimizer(name: str, model, lr: float, device: str):
    import torch

    from neat.torch import NGAdam

    fused = str(device).startswith("cuda")
    settings = dict(lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), fused=True, **settings)
    return NGAdam(model, fused=fused, **settings)


def train_gpt(size: GPT, optimizer: str, seed: int, device: str, seconds: float) -> dict:
    """Part (c), one run: the size's steps or fewer when ``seconds`` run out (checked every 25 steps)."""
    import numpy as np
    import torch
    from torch.nn import functional as F

    from benchmarks.data import stdlib_text
    from benchmarks.schedule import DEFAULT as SCHEDULE
    from benchmarks.schedule import apply
    from benchmarks.workloads import ByteTransformer

    text = stdlib_text()
    train = torch.from_numpy(text["train"].astype(np.int64)).to(device)
    val = torch.from_numpy(text["val"].astype(np.int64)).to(device)
    torch.manual_seed(seed)
    model = ByteTransformer(size.context, size.width, size.layers, size.heads).to(device)
    opt = _optimizer(optimizer, model, size.lr, device)
    peaks = [g["lr"] for g in opt.param_groups]
    batches = torch.Generator(device="cpu").manual_seed(10_000 + seed)
    offsets = torch.arange(size.context + 1, device=device)
    kind = "cuda" if str(device).startswith("cuda") else "cpu"

    def windows(source, starts):
        chunk = source[starts[:, None] + offsets[None, :]]
        return chunk[:, :-1], chunk[:, 1:]

    def loss_of(x, y):
        with torch.autocast(kind, dtype=torch.bfloat16):
            logits = model(x)
        return F.cross_entropy(logits.float().reshape(-1, 256), y.reshape(-1))

    sync = torch.cuda.synchronize if kind == "cuda" else (lambda: None)
    sync()
    start, done = time.monotonic(), 0
    for step in range(1, size.steps + 1):
        starts = torch.randint(0, len(train) - size.context - 1, (size.batch,), generator=batches).to(device)
        apply(opt, peaks, SCHEDULE.factor(step, size.steps))
        loss = loss_of(*windows(train, starts))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done = step
        if step % 25 == 0:
            sync()
            if time.monotonic() - start > seconds:
                break
    sync()
    elapsed = time.monotonic() - start
    model.eval()
    with torch.no_grad():
        starts = torch.linspace(0, len(val) - size.context - 2, 64).long().to(device)
        val_bpb = loss_of(*windows(val, starts)).item() / math.log(2)
    return dict(
        size=asdict(size),
        parameters=sum(p.numel() for p in model.parameters()),
        optimizer=optimizer,
        seed=seed,
        steps_done=done,
        truncated=done < size.steps,
        seconds=round(elapsed, 2),
        ms_per_step=round(1e3 * elapsed / max(done, 1), 3),
        tokens_per_s=round(done * size.batch * size.context / max(elapsed, 1e-9)),
        val_bits_per_byte=round(val_bpb, 5),
    )


def gpt_runs(device: str, dry_run: bool, clock: Clock, log) -> int:
    """Part (c): every (seed, size, optimizer), interleaved; a run gets an equal share of the time left."""
    sizes = TOY if dry_run else SIZES
    seeds = SEEDS[:2] if dry_run else SEEDS
    plan = [(seed, size, opt) for seed in seeds for size in sizes for opt in ("adamw", "neat")]
    for i, (seed, size, opt) in enumerate(plan):
        share = clock.left() / (len(plan) - i)
        if share < (0.5 if dry_run else 5.0):
            log(dict(part="gpt", skipped=f"{len(plan) - i} run(s): out of time", left_s=round(clock.left(), 1)))
            return i
        try:
            log(dict(part="gpt", **train_gpt(size, opt, seed, device, share)))
        except Exception as error:  # noqa: BLE001 - one failing run is recorded, the others still run
            log(dict(part="gpt", size=asdict(size), optimizer=opt, seed=seed, error=f"{type(error).__name__}: {error}"))
    return len(plan)


def main(out: Path, limit: float = 480.0, dry_run: bool = False) -> int:
    """The three parts in order, each line appended to ``out/gpu.jsonl`` as soon as it exists."""
    import torch

    from benchmarks.provenance import current
    from benchmarks.runner import machine

    device = "cpu" if dry_run else "cuda"
    if not dry_run and not torch.cuda.is_available():
        sys.exit(
            "python -m benchmarks gpu needs a CUDA device (torch.cuda.is_available() is False); "
            "--dry-run runs it on the CPU"
        )
    clock = Clock(limit)
    path = Path(out) / "gpu.jsonl"
    stamp = dict(dry_run=dry_run, machine=machine(device), source=current())

    def log(line: dict) -> None:
        records.append(path, {**line, **stamp, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        print({k: v for k, v in line.items() if k != "tail"}, flush=True)

    log(dict(part="conformance", **conformance(dry_run, min(150.0, clock.left() / 3))))
    log(dict(part="steptime", shapes="toy" if dry_run else "gpt2-124m", ms=step_times(device, dry_run)))
    gpt_runs(device, dry_run, clock, log)
    print(f"wrote {path}")
    return 0

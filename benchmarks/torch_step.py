"""Time ``neat.torch.NGAdam`` against ``torch.optim.AdamW(fused=True)``, the fastest torch baseline.

Cases:

* ``gpt2-124m``: one optimizer step on the parameter shapes of GPT-2 small (148 tensors,
  75 players: one per module; the LM head is tied to ``wte``), random float32 gradients;
* ``many-small``: one step on 1,600 tensors of 64 elements, one player each (the fixed
  per-tensor and per-player cost of a step);
* ``w1-train``: a whole training step of W1's MLP (784-128-64-10, batch 128, see
  :mod:`benchmarks.workloads`; random data): zero_grad, forward, backward and step.

The candidates run interleaved, each round starting at the next candidate (A, B, C, B, C, A, C, A,
B, …) so that load from other processes hits them alike; in a round each candidate runs an untimed
step, then ``--block`` timed ones, so that each timed step follows one of its own, as in training
(for ``w1-train`` this matters: fused AdamW's training step is ≈ 12 % faster after one of its own
than after another optimizer's). Each row gives the median time, its spread (25th–75th
percentile) and the median of the per-round ratios to the baseline, with the optimizer state at
rest and (step cases) the peak extra memory of one step, both over the parameter bytes. Not a test::

    python -m benchmarks.torch_step --threads 2 --steps 20 --block 1 --cases gpt2-124m,many-small
    python -m benchmarks.torch_step --threads 2 --steps 40 --instances 4 --cases w1-train
    python -m benchmarks.torch_step --device cuda
    python -m benchmarks.torch_step --steps 2 --warmup 1 --cases many-small,w1-train   # smoke run
"""

from __future__ import annotations

import argparse
import platform
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from benchmarks.shapes import gpt2_modules, per_module
from benchmarks.timing import interleaved
from neat.torch import NGAdam

HYPERPARAMETERS = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)


def many_small_shapes(count=1600, size=64):
    """``count`` one-tensor modules of ``size`` elements."""
    return [(f"p{i}", [(size,)]) for i in range(count)]


def small_shapes():
    """A small MLP (784-256-128-10)."""
    return [("fc1", [(784, 256), (256,)]), ("fc2", [(256, 128), (128,)]), ("fc3", [(128, 10), (10,)])]


def make_params(modules, device):
    """Random parameters with random gradients (set once: a step-only benchmark) and one player
    per module."""
    generator = torch.Generator(device=device).manual_seed(0)
    params, players = [], []
    for _, shapes in modules:
        players.append(list(range(len(params), len(params) + len(shapes))))
        for shape in shapes:
            p = torch.randn(shape, device=device, generator=generator) * 0.02
            p.grad = torch.randn(shape, device=device, generator=generator) * 1e-3
            params.append(p)
    return params, players


@dataclass
class Setup:
    """One candidate on one case: ``run()`` does the timed work; ``params`` and ``optimizer``
    are for the memory columns."""

    run: Callable[[], None]
    params: list
    optimizer: torch.optim.Optimizer


def step_case(modules):
    """A case timing ``optimizer.step()`` alone on parameters of ``modules``' shapes."""

    def setup(make_optimizer, device) -> Setup:
        params, players = make_params(modules, device)
        optimizer = make_optimizer(params, players)
        return Setup(optimizer.step, params, optimizer)

    return setup


def w1_training_case(batch=128):
    """A case timing a whole training step of W1's MLP on a random batch."""

    def setup(make_optimizer, device) -> Setup:
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(784, 128),
            torch.nn.ReLU(),
            torch.nn.Linear(128, 64),
            torch.nn.ReLU(),
            torch.nn.Linear(64, 10),
        ).to(device)
        x = torch.randn(batch, 784, device=device)
        y = torch.randint(0, 10, (batch,), device=device)
        params = list(model.parameters())
        optimizer = make_optimizer(params, [[0, 1], [2, 3], [4, 5]])  # one player per Linear, as NGAdam(model)

        def run():
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()

        return Setup(run, params, optimizer)

    return setup


CASES = {
    "gpt2-124m": step_case(per_module(gpt2_modules())),
    "many-small": step_case(many_small_shapes()),
    "small-mlp": step_case(small_shapes()),
    "w1-train": w1_training_case(),
}
STEP_ONLY = {"gpt2-124m", "many-small", "small-mlp"}


#: NEAT's candidates by their ``--candidates`` names.
NEAT_CANDIDATES = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def candidates(names=tuple(NEAT_CANDIDATES)):
    """``(label, make(params, players))``: the baseline, then NEAT with the flags of ``names``."""

    def ngadam(**flags):
        return lambda params, players: NGAdam(params, players=players, **flags, **HYPERPARAMETERS)

    def label(name):
        return "NGAdam() default" if name == "default" else f"NGAdam({name}=True)"

    baseline = ("AdamW(fused=True)", lambda params, _: torch.optim.AdamW(params, fused=True, **HYPERPARAMETERS))
    return [baseline, *((label(name), ngadam(**NEAT_CANDIDATES[name])) for name in names)]


class PeakMemory:
    """Peak extra memory of a block: CUDA allocator stats, or Linux peak RSS (reset via clear_refs)."""

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        else:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.start = _status_kib("VmRSS") * 1024
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.start
        else:
            self.peak = _status_kib("VmHWM") * 1024 - self.start


def _status_kib(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if torch.is_tensor(t))


def compare(
    case, rows, device, steps: int, warmup: int, measure_peak: bool, build_shift: int = 0, block: int = 1
) -> list:
    """For each row, ``None`` when it cannot run here, else a dict: ``times`` (seconds, one per
    timed step), ``kernels`` (NGAdam's kernel set), ``at_rest`` and ``peak`` (over parameter bytes).
    The candidates are built starting at row ``build_shift``. In each round a candidate runs one
    untimed step, then ``block`` timed ones, so that every timed step follows a step of its own, as
    in a training loop: what ran just before moves a small model's step by several percent (torch's
    worker threads are awake after a parallel fused AdamW step, asleep after a serial one)."""
    setups: list = [None] * len(rows)
    for index in [(build_shift + i) % len(rows) for i in range(len(rows))]:
        label, make = rows[index]
        try:
            setups[index] = case(make, device)
        except (RuntimeError, ValueError) as error:  # e.g. a fused set not registered or not installed here
            print(f"  {label}: not run ({type(error).__name__}: {error})")
    results: list = []
    for setup in setups:
        if setup is None:
            results.append(None)
            continue
        for _ in range(warmup):
            setup.run()
        peak = None
        if measure_peak:
            with PeakMemory(device) as memory:
                setup.run()
            peak = memory.peak / _bytes(setup.params)
        at_rest = _bytes(t for s in setup.optimizer.state.values() for t in s.values()) / _bytes(setup.params)
        kernels = getattr(getattr(setup.optimizer, "_kernels", None), "name", "")
        results.append(dict(kernels=kernels, at_rest=at_rest, peak=peak))
    runs = {index: setup.run for index, setup in enumerate(setups) if setup is not None}
    synchronize = (lambda _: torch.cuda.synchronize()) if device.type == "cuda" else None
    [timings] = interleaved(runs, steps, lead=1, repeat=block, rotate=True, block=synchronize)
    for index, times in timings.samples.items():
        results[index]["times"] = times
    return results


def report(case_name: str, rows, results) -> None:
    baseline = results[0]["times"]
    for (label, _), result in zip(rows, results):
        if result is None:
            print(f"| {case_name} | {label} | not run | | | | |")
            continue
        times = np.asarray(result["times"]) * 1e3
        ratios = times / (np.asarray(baseline) * 1e3)
        low, high = np.percentile(times, [25, 75])
        ratio_low, ratio_high = np.percentile(ratios, [25, 75])
        peak = "-" if result["peak"] is None else f"{result['peak']:.2f}"
        name = f"{label} [{result['kernels']}]" if result["kernels"] else label
        print(
            f"| {case_name} | {name} | {np.median(times):.3f} | {low:.3f}–{high:.3f} "
            f"| {np.median(ratios):.2f} ({ratio_low:.2f}–{ratio_high:.2f}) | {result['at_rest']:.3f} | {peak} |",
            flush=True,
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    parser.add_argument("--steps", type=int, default=20, help="timed rounds (each times every candidate once)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--block", type=int, default=5, help="timed steps per candidate per round")
    parser.add_argument(
        "--instances",
        type=int,
        default=1,
        help="repeat each case with new models and optimizers, built in a rotated order (which "
        "instance is built when moves a small model's step time by several percent), pooling the rounds",
    )
    parser.add_argument(
        "--cases", default="gpt2-124m,many-small,w1-train", help=f"comma-separated, from {', '.join(CASES)}"
    )
    parser.add_argument(
        "--candidates",
        default=",".join(NEAT_CANDIDATES),
        help=f"NEAT's rows, comma-separated, from {', '.join(NEAT_CANDIDATES)} (AdamW(fused=True) always runs)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.candidates.split(",")) - set(NEAT_CANDIDATES)
    if unknown:
        parser.error(f"unknown candidates {sorted(unknown)}; choose from {', '.join(NEAT_CANDIDATES)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
        f"{platform.processor() or platform.machine()}, {args.steps} interleaved rounds after {args.warmup} warm-up, "
        f"{args.block} timed step(s) per candidate per round, {args.instances} instance(s) of each case"
    )
    print(
        "| case | optimizer [kernels] | ms (median) | ms (25–75%) | ratio to AdamW(fused) (25–75%) "
        "| state at rest / params | step peak extra / params |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rows = candidates(args.candidates.split(","))
    for name in args.cases.split(","):
        measure = dict(steps=args.steps, warmup=args.warmup, block=args.block)
        results = compare(CASES[name], rows, device, measure_peak=name in STEP_ONLY, **measure)
        for instance in range(1, args.instances):  # fresh models and optimizers, built in another order
            again = compare(CASES[name], rows, device, measure_peak=False, build_shift=instance, **measure)
            for result, more in zip(results, again):
                if result is not None:
                    result["times"] += more["times"]
        report(name, rows, results)


if __name__ == "__main__":
    main()

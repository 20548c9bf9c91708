"""Time ``neat.NGAdam`` on NumPy arrays against ``torch.optim.AdamW(fused=True)`` (CPU).

The arrays of a NumPy in-place step (float32): four GPT-2-small transformer blocks'
weights and biases (32 tensors, 28.3M parameters), and many tiny tensors (1,600 of
64 elements: the per-call overhead). Timed: the whole ``neat.NGAdam.step`` (default
kernels, the game and bookkeeping included), and its two passes alone (the statistics
and in-place update passes of :class:`neat.backends.numba_backend.NumbaKernels`); AdamW
runs on the same arrays through ``torch.from_numpy``. Steps are interleaved (A, B, A, B, ...) and medians reported.
Also reports the first call's time (compilation) in a fresh process, once with numba's
on-disk cache cleared (cold) and once with it filled (cached). Not a test::

    python -m benchmarks.numpy_step --threads 2
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

FIRST_CALL = """
import time
from benchmarks.numpy_step import Problem
problem = Problem([(5,)])
start = time.perf_counter()
import neat.backends._numba_loops
imported = time.perf_counter()
problem.neat_step()
print(imported - start, time.perf_counter() - imported)
"""


def block_shapes(blocks=4, width=768):
    """Weights and biases of ``blocks`` GPT-2 transformer blocks (attention and MLP)."""
    shapes = []
    for _ in range(blocks):
        shapes += [
            (width, 3 * width),
            (3 * width,),
            (width, width),
            (width,),
            (width, 4 * width),
            (4 * width,),
            (4 * width, width),
            (width,),
        ]
    return shapes


class Problem:
    """float32 parameters, gradients and moments of ``shapes``, shared by NG-Adam and AdamW."""

    def __init__(self, shapes, seed=0):
        from neat.kernels import TensorScalars

        rng = np.random.default_rng(seed)
        self.params = [(0.02 * rng.standard_normal(s)).astype(np.float32) for s in shapes]
        self.grads = [(1e-3 * rng.standard_normal(s)).astype(np.float32) for s in shapes]
        self.exp_avg = [np.zeros(s, np.float32) for s in shapes]
        self.exp_avg_sq = [np.zeros(s, np.float32) for s in shapes]
        count = len(shapes)
        column = np.full(count, 0.5, np.float32)
        self.scalars = TensorScalars(
            column,
            np.full(count, 1e-8, np.float32),
            np.zeros(count, np.float32),
            np.full(count, 0.9999, np.float32),
            np.full(count, 1e-3, np.float32),
            np.full(count, 1e-8, np.float32),
        )
        self.finite = np.asarray(True)

    def neat_step(self):
        """The two passes of an in-place NG-Adam step (numba kernels)."""
        import array_api_compat.numpy as xp

        from neat.backends.numba_backend import NumbaKernels

        kernels = NumbaKernels()
        stats = kernels.statistics(xp, self.grads, self.exp_avg, self.exp_avg_sq, self.scalars, np.float32)
        kernels.update(
            xp,
            self.params,
            self.grads,
            self.exp_avg,
            self.exp_avg_sq,
            stats,
            self.scalars,
            (0.9, 0.999),
            self.finite,
            inplace=True,
        )

    def ngadam(self):
        """The whole in-place step of ``neat.NGAdam`` (default kernels, one player per tensor, the
        game included) on copies of the parameters."""
        import neat

        optimizer = neat.NGAdam([p.copy() for p in self.params], lr=1e-3, weight_decay=0.1)
        return lambda: optimizer.step(self.grads)

    def adamw(self):
        """``torch.optim.AdamW(fused=True)`` on copies of the same arrays (as ``torch.from_numpy``)."""
        import torch

        params = []
        for p, g in zip(self.params, self.grads):
            tensor = torch.from_numpy(p.copy()).requires_grad_()
            tensor.grad = torch.from_numpy(g)
            params.append(tensor)
        return torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1, fused=True).step


def interleaved(steps: dict, rounds: int, warmup: int) -> dict:
    """Median seconds per call of each function, calls interleaved round by round."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def first_call_seconds(cache_dir: str) -> tuple[float, float]:
    """Seconds to import numba and the loops, then of the first NG-Adam step (compilation or
    cache load), in a fresh process whose numba cache is ``cache_dir``."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    out = subprocess.run([sys.executable, "-c", FIRST_CALL], env=env, check=True, capture_output=True, text=True)
    imported, first = out.stdout.strip().splitlines()[-1].split()
    return float(imported), float(first)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch and numba threads")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--models", default="blocks,tiny")
    args = parser.parse_args(argv)

    import numba
    import torch

    from neat.backends.numba_backend import numba_missing

    numba_missing()  # lets NEAT choose numba's thread pool first, as it does in a user's process

    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    print(
        f"numba {numba.__version__}, torch {torch.__version__}, numpy {np.__version__}, {args.threads} threads, "
        f"{platform.processor() or platform.machine()}"
    )
    with tempfile.TemporaryDirectory() as cache_dir:
        for label in ("empty", "filled"):
            imported, first = first_call_seconds(cache_dir)
            print(f"{label} numba cache: import {imported:.2f} s, first float32 step {first:.2f} s")
    models = {"blocks": block_shapes(), "tiny": [(64,)] * 1600}
    print(
        "| arrays | tensors | params | neat.NGAdam step ms | its two passes ms | AdamW(fused=True) ms "
        "| ratio step / AdamW |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.models.split(","):
        problem = Problem(models[name])
        medians = interleaved(
            {"step": problem.ngadam(), "passes": problem.neat_step, "adamw": problem.adamw()}, args.rounds, args.warmup
        )
        count = sum(p.size for p in problem.params)
        print(
            f"| {name} | {len(problem.params)} | {count / 1e6:.2f}M | {medians['step'] * 1e3:.2f} "
            f"| {medians['passes'] * 1e3:.2f} | {medians['adamw'] * 1e3:.2f} "
            f"| {medians['step'] / medians['adamw']:.2f} |",
            flush=True,
        )
    print(f"numba threading layer: {numba.threading_layer()}")


if __name__ == "__main__":
    main()

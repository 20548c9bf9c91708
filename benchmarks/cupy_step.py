"""Benchmark (not a test): one in-place NG-Adam step on CuPy, fused kernels vs plain CuPy Adam.

On GPT-2-small shapes (148 tensors, 124.4 M parameters, float32, one player per
transformer block), times with CUDA events (``cupyx.profiler.benchmark``, GPU time):

* ``neat.NGAdam`` with the CuPy backend's fused kernels (the default on CuPy);
* the same step through :data:`neat.kernels.GENERIC` (array-API code, in place);
* AdamW written the obvious way in CuPy (one expression per line, per tensor);

and records the ratio fused NG-Adam / plain Adam. Needs CuPy and a CUDA GPU::

    python benchmarks/cupy_step.py            # writes benchmarks/results/cupy_step.md
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np

try:
    from benchmarks.shapes import block_players, flat, gpt2_modules
except ModuleNotFoundError:  # run as a script (python benchmarks/cupy_step.py): this folder is on the path
    from shapes import block_players, flat, gpt2_modules

RESULT = Path(__file__).parent / "results" / "cupy_step.md"
COMMAND = "python benchmarks/cupy_step.py"


def gpt2_small_shapes():
    """GPT-2 small's parameter shapes in order, and one player per block (embeddings, blocks, final norm)."""
    modules = gpt2_modules()
    return flat(modules), block_players(modules)


class PlainAdamW:
    """AdamW in CuPy as one writes it by hand: each line a kernel, per tensor."""

    def __init__(self, cupy, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.cupy, self.params, self.lr, self.betas, self.eps, self.weight_decay = (
            cupy,
            params,
            lr,
            betas,
            eps,
            weight_decay,
        )
        self.exp_avg = [cupy.zeros_like(p) for p in params]
        self.exp_avg_sq = [cupy.zeros_like(p) for p in params]
        self.count = 0

    def step(self, grads):
        self.count += 1
        beta1, beta2 = self.betas
        first, second = 1 - beta1**self.count, 1 - beta2**self.count
        for p, g, m, v in zip(self.params, grads, self.exp_avg, self.exp_avg_sq):
            p *= 1 - self.lr * self.weight_decay
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            p -= self.lr * (m / first) / (self.cupy.sqrt(v / second) + self.eps)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=50, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (compiles the kernels)")
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args(argv)

    from neat.backends.cupy_backend import neat_backend_info

    reason = neat_backend_info().skip_reason()
    if reason is not None:
        sys.exit(f"cupy_step benchmark needs CuPy and a CUDA GPU: {reason}. Nothing measured.")
    import cupy
    from cupyx.profiler import benchmark

    from neat.inplace import NGAdam

    shapes, players = gpt2_small_shapes()
    rng = cupy.random.default_rng(0)

    def tensors(scale):
        return [scale * rng.standard_normal(s, dtype=cupy.float32) for s in shapes]

    grads = tensors(1e-3)
    ng_adam = NGAdam(tensors(0.02), players=players)
    generic = NGAdam(tensors(0.02), players=players, kernels="generic")
    adamw = PlainAdamW(cupy, tensors(0.02))

    variants = {
        "NG-Adam, fused CuPy kernels": ng_adam.step,
        "NG-Adam, GENERIC kernels": generic.step,
        "AdamW, plain CuPy": adamw.step,
    }
    times, host_times = {}, {}
    for label, step in variants.items():
        result = benchmark(step, (grads,), n_repeat=args.repeat, n_warmup=args.warmup)
        times[label] = float(np.median(result.gpu_times[0])) * 1e3
        host_times[label] = float(np.median(result.cpu_times)) * 1e3
        print(
            f"{label:>28}: {times[label]:8.3f} ms per step on the GPU, {host_times[label]:8.3f} ms on the host "
            f"(medians of {args.repeat})"
        )
    ratio = times["NG-Adam, fused CuPy kernels"] / times["AdamW, plain CuPy"]
    print(f"fused NG-Adam / plain AdamW = {ratio:.3f}")

    device = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"].decode()
    rows = "\n".join(f"| {label} | {ms:.3f} | {host_times[label]:.3f} |" for label, ms in times.items())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        f"# CuPy step: fused NG-Adam vs plain CuPy AdamW (GPT-2 small shapes)\n\n"
        f"Command: `{COMMAND}`  \nDevice: {device}; CuPy {cupy.__version__}; Python {platform.python_version()}  \n"
        f"{len(shapes)} float32 tensors, {sum(int(np.prod(s)) for s in shapes) / 1e6:.1f} M parameters, "
        f"{len(players)} players; median GPU time of {args.repeat} steps after {args.warmup} warm-up steps.\n\n"
        f"| variant | GPU ms per step | host ms per step |\n| --- | --- | --- |\n{rows}\n\n"
        f'**Ratio fused NG-Adam / plain AdamW: {ratio:.3f}** (docs/spec.md "Cost" bound: about 1.45 × a fused AdamW).\n'
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

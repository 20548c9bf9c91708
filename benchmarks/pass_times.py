"""Where a large model's NEAT step goes: its two passes timed alone, against fused AdamW's step.

On GPT-2-small's shapes (float32 torch CPU tensors), interleaved, medians: the numba kernels'
statistics pass (SPEC steps 2, 3: reads ``g, m, v``), their in-place update pass (steps 2, 6, 8,
9: reads ``θ, g, m, v``, writes ``θ, m, v``; every tensor with an NGE term, so that it also forms
the previous direction) and ``torch.optim.AdamW(fused=True).step()`` on a copy of the parameters
(reads four arrays, writes three). The passes run as the two-pass path runs them, on numba's
thread pool; the fused step runs the same loops on torch's OpenMP pool. Each row also gives the
bytes the pass reads and writes, and the rate. Not a test::

    python -m benchmarks.pass_times --threads 2 --rounds 9
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.shapes import gpt2_modules, per_module
from benchmarks.timing import interleaved
from benchmarks.torch_step import HYPERPARAMETERS, make_params


def _passes(params) -> dict:
    """``{name: (run, arrays read, arrays written)}`` for NEAT's two passes on ``params``."""
    import array_api_compat.torch as xp

    from neat.backends.numba.kernels import NumbaKernels
    from neat.kernels import TensorScalars

    grads = [p.grad for p in params]
    exp_avg = [torch.randn_like(p) * 1e-3 for p in params]
    exp_avg_sq = [(torch.rand_like(p) + 1) * 1e-6 for p in params]
    ones = np.ones(len(params), np.float32)
    # A small NGE term on every tensor (so that the update forms the previous direction) keeps the
    # moments bounded over the rounds.
    (beta1, beta2), game = (
        HYPERPARAMETERS["betas"],
        (ones, ones * 1e-8, ones * 1e-6, ones * (1 - 1e-4), ones * 1e-3, ones * 1e-8),
    )
    scalars = TensorScalars(*game, beta1, 1.0 - beta1, beta2, 1.0 - beta2)  # one β for all tensors
    kernels = NumbaKernels()

    def statistics_pass():
        return kernels.statistics(xp, grads, exp_avg, exp_avg_sq, scalars, np.float32)

    def update_pass():
        kernels.update(xp, params, grads, exp_avg, exp_avg_sq, None, scalars, True, inplace=True)

    return {"NEAT statistics pass": (statistics_pass, 3, 0), "NEAT update pass": (update_pass, 4, 3)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--layers", type=int, default=12, help="GPT-2 blocks (12: GPT-2 small)")
    parser.add_argument("--width", type=int, default=768)
    args = parser.parse_args(argv)
    import numba

    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    shapes = per_module(gpt2_modules(layers=args.layers, width=args.width))
    params, _ = make_params(shapes, "cpu")
    baseline, _ = make_params(shapes, "cpu")
    adamw = torch.optim.AdamW(baseline, fused=True, **HYPERPARAMETERS)
    runs = {**_passes(params), "AdamW(fused=True) step": (adamw.step, 4, 3)}
    medians = interleaved({name: run for name, (run, _, _) in runs.items()}, args.rounds, warmup=1)[0].medians
    array_bytes = sum(p.numel() * p.element_size() for p in params)
    print(
        f"torch {torch.__version__}, numba {numba.__version__}, {args.threads} threads, "
        f"{sum(p.numel() for p in params)} float32 parameters in {len(params)} tensors"
    )
    print("| run | ms (median) | arrays read + written | GB/s |")
    print("| --- | --- | --- | --- |")
    for name, (_, reads, writes) in runs.items():
        rate = (reads + writes) * array_bytes / medians[name] / 1e9
        print(f"| {name} | {medians[name] * 1e3:.1f} | {reads} + {writes} | {rate:.1f} |")


if __name__ == "__main__":
    main()

"""Time one optimizer step on a CUDA GPU: NG-Adam's Triton kernels against fused AdamW.

GPT-2-small parameter shapes (124.4 M parameters, 148 float32 tensors, one player per
module, see :mod:`benchmarks.shapes`), random gradients. Candidates:

* ``torch.optim.AdamW(fused=True)`` (the baseline) and ``AdamW(foreach=True)``;
* ``neat.torch.NGAdam(fused=True)`` (the Triton kernels on CUDA);
* NG-Adam through :func:`neat.functional.step` with ``kernels="triton"``, in place;
* the same step captured once in a CUDA graph and replayed (no host work per step);
* NG-Adam with each other kernel set named in ``--kernels`` (e.g. ``foreach``).

Steps are interleaved (A, B, C, A, B, C, …) so that clock and load changes hit every
candidate alike; each step is timed with CUDA events; the table gives medians and the
ratio to fused AdamW (SPEC "Cost": 10 array passes against AdamW's 7, so ≈ 1.43 is the
bound of a memory-bound NG-Adam step). Not a test::

    python -m benchmarks.cuda_step [--steps 50] [--warmup 5] [--models gpt2-124m,small]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

from benchmarks.timing import Clock, interleaved

ADAMW = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)


def cuda_unavailable() -> str | None:
    """Why this benchmark cannot run here, or ``None``."""
    for module in ("torch", "triton"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    return None


class NGAdamStep:
    """One in-place :func:`neat.functional.step` with the kernel set ``kernels``; the schedule's
    ``lr`` and ``weight_decay`` are 0-d device tensors, so the step reads nothing from the host."""

    def __init__(self, params, players, kernels: str):
        import torch

        from neat import functional
        from neat.config import NGAdamConfig
        from neat.topology import Topology

        self.config = NGAdamConfig(**ADAMW)
        self.params, self.grads, self.kernels = params, [p.grad for p in params], kernels
        self.lr, self.weight_decay = (
            torch.tensor(ADAMW[name], device=params[0].device) for name in ("lr", "weight_decay")
        )
        self.state = functional.init_state(params, Topology.build(len(params), players, None, mu=self.config.mu))

    def step(self):
        from neat import functional

        _, self.state = functional.step(
            self.params,
            self.grads,
            self.state,
            self.config,
            lr=self.lr,
            weight_decay=self.weight_decay,
            kernels=self.kernels,
            inplace=True,
        )

    __call__ = step


class GraphedNGAdamStep(NGAdamStep):
    """:class:`NGAdamStep` captured in a CUDA graph after warm-up steps (compilation, cached tables):
    the captured step writes the new game state back into the state's own tensors."""

    def __init__(self, params, players, kernels: str, warmup: int):
        import torch

        super().__init__(params, players, kernels)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                self.step()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            before = self.state
            self.step()
            for old, new in zip(before.game, self.state.game):
                old.copy_(new)
            self.state = before

    def __call__(self):
        self.graph.replay()


def candidates(kernel_sets, warmup):
    """``(label, make(params, players) -> step callable)``; the first is the baseline."""
    import torch

    from neat.torch import NGAdam

    rows = [
        ("AdamW(fused=True)", lambda p, players: torch.optim.AdamW(p, fused=True, **ADAMW).step),
        ("AdamW(foreach=True)", lambda p, players: torch.optim.AdamW(p, foreach=True, **ADAMW).step),
        ("neat.torch.NGAdam(fused=True)", lambda p, players: NGAdam(p, players=players, fused=True, **ADAMW).step),
        ("NG-Adam triton (functional)", lambda p, players: NGAdamStep(p, players, "triton")),
        ("NG-Adam triton, CUDA graph", lambda p, players: GraphedNGAdamStep(p, players, "triton", warmup)),
    ]
    for name in kernel_sets:
        rows.append((f"NG-Adam {name} (functional)", lambda p, players, name=name: NGAdamStep(p, players, name)))
    return rows


class CudaEvents(Clock):
    """GPU time between CUDA events recorded on the current stream before and after a call: the host does not
    wait for the GPU between calls."""

    def __init__(self):
        import torch

        def read():
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event

        super().__init__(read)

    def between(self, start, end) -> list[float]:
        end.synchronize()
        return [start.elapsed_time(end) / 1e3]


def median_times(makers, modules, steps: int, warmup: int, device: str = "cuda") -> list:
    """Median milliseconds of one step per candidate (``None`` where it could not be built): CUDA
    events on a CUDA device, wall time elsewhere (the CPU dry run of ``python -m benchmarks gpu``)."""
    import torch

    from benchmarks.timing import WALL
    from benchmarks.torch_step import make_params

    device = torch.device(device)
    runs = {}
    for index, (label, make) in enumerate(makers):
        params, players = make_params(modules, device)
        try:
            runs[index] = make(params, players)
        except Exception as error:  # noqa: BLE001 - reported in its row, the others still run
            print(f"  {label}: not run ({type(error).__name__}: {error})", file=sys.stderr)
    [timings] = interleaved(runs, steps, warmup, clocks=[CudaEvents() if device.type == "cuda" else WALL])
    medians = timings.medians
    return [1e3 * medians[index] if index in medians else None for index in range(len(makers))]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--models", default="gpt2-124m", help="comma-separated: gpt2-124m, small")
    parser.add_argument("--kernels", default="foreach", help="other NG-Adam kernel sets to time (comma-separated)")
    args = parser.parse_args(argv)
    reason = cuda_unavailable()
    if reason:
        sys.exit(f"benchmarks.cuda_step times CUDA kernels and cannot run here: {reason}")

    import torch
    import triton

    from benchmarks.shapes import gpt2_modules, per_module
    from benchmarks.torch_step import small_shapes

    print(f"torch {torch.__version__}, triton {triton.__version__}, {torch.cuda.get_device_name()}")
    models = {"gpt2-124m": per_module(gpt2_modules()), "small": small_shapes()}
    rows = candidates([k for k in args.kernels.split(",") if k], args.warmup)
    print("| model | params | optimizer | step ms (median) | ratio to AdamW(fused) |")
    print("| --- | --- | --- | --- | --- |")
    for name in args.models.split(","):
        modules = models[name]
        count = sum(torch.Size(s).numel() for _, shapes in modules for s in shapes)
        times = median_times(rows, modules, args.steps, args.warmup)
        for (label, _), ms in zip(rows, times):
            shown = "not run" if ms is None else f"{ms:.3f}"
            ratio = "-" if ms is None or times[0] is None else f"{ms / times[0]:.2f}"
            print(f"| {name} | {count / 1e6:.1f}M | {label} | {shown} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()

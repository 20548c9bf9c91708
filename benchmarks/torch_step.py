"""Time one optimizer step: neat.torch.NGAdam against torch.optim.AdamW, side by side.

Parameter shapes of a 124M-parameter GPT-2-like model (one player per module,
75 players, 148 tensors) and of a small MLP; random float32 gradients. Reports
the median step time, the NG-Adam / AdamW ratio, the optimizer state at rest
and the step's peak extra memory (temporaries). Not a test::

    python -m benchmarks.torch_step --threads 2            # CPU
    python -m benchmarks.torch_step --device cuda          # adds AdamW(fused=True)
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from neat.torch import NGAdam


def gpt2_shapes(vocab=50257, context=1024, width=768, layers=12):
    """``(module name, [parameter shapes])`` of GPT-2 small (the LM head is tied to ``wte``)."""
    modules = [("wte", [(vocab, width)]), ("wpe", [(context, width)])]
    for i in range(layers):
        modules += [(f"h{i}.ln_1", [(width,), (width,)]), (f"h{i}.attn.c_attn", [(width, 3 * width), (3 * width,)]),
                    (f"h{i}.attn.c_proj", [(width, width), (width,)]), (f"h{i}.ln_2", [(width,), (width,)]),
                    (f"h{i}.mlp.c_fc", [(width, 4 * width), (4 * width,)]),
                    (f"h{i}.mlp.c_proj", [(4 * width, width), (width,)])]
    return modules + [("ln_f", [(width,), (width,)])]


def small_shapes():
    return [("fc1", [(784, 256), (256,)]), ("fc2", [(256, 128), (128,)]), ("fc3", [(128, 10), (10,)])]


def make_params(modules, device):
    generator = torch.Generator(device=device).manual_seed(0)
    params, players = [], []
    for _, shapes in modules:
        players.append(list(range(len(params), len(params) + len(shapes))))
        for shape in shapes:
            p = torch.randn(shape, device=device, generator=generator) * 0.02
            p.grad = torch.randn(shape, device=device, generator=generator) * 1e-3
            params.append(p)
    return params, players


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


def _timed_step(optimizer, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def compare(makers, modules, device, steps, warmup):
    """Median step time, state at rest and step peak memory (both / parameter bytes) per optimizer.

    The optimizers' steps are interleaved (A, B, A, B, …) so that load from other processes
    on a shared machine hits them alike."""
    runs = []
    for make in makers:
        params, players = make_params(modules, device)
        runs.append((make(params, players), params))
    peaks = []
    for optimizer, _ in runs:
        for _ in range(warmup):
            optimizer.step()
        with PeakMemory(device) as memory:
            optimizer.step()
        peaks.append(memory.peak)
    times = [[] for _ in runs]
    for _ in range(steps):
        for (optimizer, _), record in zip(runs, times):
            record.append(_timed_step(optimizer, device))
    results = []
    for (optimizer, params), record, peak in zip(runs, times, peaks):
        state_bytes = sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
                          if torch.is_tensor(t))
        param_bytes = sum(p.numel() * p.element_size() for p in params)
        results.append((statistics.median(record), state_bytes / param_bytes, peak / param_bytes))
    return results


def candidates(device):
    adamw = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
    rows = [("AdamW(foreach=True)", lambda p, _: torch.optim.AdamW(p, foreach=True, **adamw))]
    if device.type == "cuda":
        rows.append(("AdamW(fused=True)", lambda p, _: torch.optim.AdamW(p, fused=True, **adamw)))
    rows.append(("NGAdam (foreach)", lambda p, players: NGAdam(p, players=players, **adamw)))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--models", default="gpt2-124m,small")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"{platform.processor() or platform.machine()}")
    models = {"gpt2-124m": gpt2_shapes(), "small": small_shapes()}
    print("| model | params | optimizer | step ms | ratio to AdamW(foreach) | state at rest / params "
          "| step peak extra / params |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.models.split(","):
        modules = models[name]
        count = sum(torch.Size(s).numel() for _, shapes in modules for s in shapes)
        rows = candidates(device)
        results = compare([make for _, make in rows], modules, device, args.steps, args.warmup)
        baseline = results[0][0]
        for (label, _), (seconds, at_rest, peak) in zip(rows, results):
            print(f"| {name} | {count / 1e6:.1f}M | {label} | {seconds * 1e3:.2f} | {seconds / baseline:.2f} "
                  f"| {at_rest:.3f} | {peak:.2f} |", flush=True)

if __name__ == "__main__":
    main()

"""Time ``neat.NGAdam`` on NumPy arrays against ``torch.optim.AdamW(fused=True)`` (CPU).

The arrays of a NumPy in-place step (float32): four GPT-2-small transformer blocks'
weights and biases (``blocks``: 32 tensors, 28.3M parameters), many tiny tensors (``tiny``:
1,600 of 64 elements, the per-call overhead) and 100 one-element tensors, one player each
(``game100``: a step that is all game and bookkeeping, SPEC steps 1–7 and the per-tensor
scalars). Timed: the whole ``neat.NGAdam.step`` (default kernels: one compiled call, the game
included), and the two passes alone (the statistics and in-place update passes of
:class:`neat.backends.numba.kernels.NumbaKernels`, called separately); AdamW runs on the same
arrays through ``torch.from_numpy``. Steps are interleaved (A, B, A, B, ...) and medians reported.
Also reports the first ``neat.NGAdam`` step's time (compilation) in a fresh process, once with
numba's on-disk cache cleared (cold) and once with it filled (cached). Not a test::

    python -m benchmarks.numpy_step --threads 2
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np

from benchmarks.shapes import dense_layers, flat, gpt2_modules
from benchmarks.timing import interleaved

FIRST_CALL = """
import time
from benchmarks.numpy_step import Problem
problem = Problem([(5,)])
start = time.perf_counter()
import neat.backends.numba.loops
imported = time.perf_counter()
problem.ngadam()()
print(imported - start, time.perf_counter() - imported)
"""


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
            *(0.9, 0.1, 0.999, 1.0 - 0.999),  # one β1, β2 for all tensors: the moments' coefficients
        )
        self.finite = np.asarray(True)

    def neat_step(self):
        """The two passes of an in-place NG-Adam step (numba kernels)."""
        import array_api_compat.numpy as xp

        from neat.backends.numba.kernels import NumbaKernels

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


def game_seconds(players: int = 100, rounds: int = 2000) -> dict:
    """Median seconds of the game and bookkeeping of one step (SPEC steps 1–7, the bias
    corrections, the per-tensor scalars and the new state) for ``players`` one-element one-tensor
    players on a chain graph: ``fused``, the compiled step as the fused path calls it (the game
    and two passes over 100 elements, arguments prepared once); ``compiled``, the two compiled
    calls of the two-pass path (``direction_scalars`` then ``settle``, from Python); ``numpy``,
    the same as NumPy array operations (:mod:`neat.game`)."""
    import array_api_compat.numpy as xp

    from neat import functional, game
    from neat.backends.numba import game as numba_game
    from neat.backends.numba.kernels import CompiledGame, fused_arguments
    from neat.config import NGAdamConfig
    from neat.state import GameState
    from neat.topology import Topology

    config = NGAdamConfig()
    tables = Topology.build(players, None, None, mu=config.mu).tables(xp, "cpu", np.float32)
    rng = np.random.default_rng(0)
    state = GameState.zeros(xp, players, players, np.float32, "cpu")._replace(count=np.asarray(5, np.int32))
    sums = np.abs(rng.standard_normal((players, 3))).astype(np.float32)
    sums[:, 1] *= rng.choice([-1, 1], players)

    def step(rules):
        def run():
            direction = rules.direction_scalars(xp, state.tensor_count, np.float32, config.betas, config.eps)
            rules.settle(xp, tables, sums, state, config, config.lr, config.weight_decay, direction)

        return run

    params = [np.zeros(1, np.float32) for _ in range(players)]
    fused_state = functional.init_state(params, Topology.build(players, None, None, mu=config.mu))
    grads = [rng.standard_normal(1).astype(np.float32) for _ in range(players)]
    arguments = fused_arguments(
        params, grads, fused_state.exp_avg, fused_state.exp_avg_sq, fused_state.game, fused_state.tables,
        config, config.lr, config.weight_decay,
    )  # fmt: skip
    candidates = {
        "fused": lambda: numba_game.play(*arguments),
        "compiled": step(CompiledGame()),
        "numpy": step(game),
    }
    return interleaved(candidates, rounds, 50)[0].medians


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
    parser.add_argument("--models", default="blocks,tiny,game100")
    args = parser.parse_args(argv)

    import numba
    import torch

    from neat.backends.numba.first_use import compiled_modules

    compiled_modules()  # lets NEAT choose numba's thread pool first, as it does in a user's process

    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    print(
        f"numba {numba.__version__}, torch {torch.__version__}, numpy {np.__version__}, {args.threads} threads, "
        f"{platform.processor() or platform.machine()}"
    )
    with tempfile.TemporaryDirectory() as cache_dir:
        for label in ("empty", "filled"):
            imported, first = first_call_seconds(cache_dir)
            print(f"{label} numba cache: import {imported:.2f} s, first neat.NGAdam float32 step {first:.2f} s")
    models = {"blocks": flat(dense_layers(gpt2_modules(), 4)), "tiny": [(64,)] * 1600, "game100": [(1,)] * 100}
    print(
        "| arrays | tensors | params | neat.NGAdam step ms | the two passes ms | AdamW(fused=True) ms "
        "| ratio step / AdamW |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.models.split(","):
        problem = Problem(models[name])
        steps = {"step": problem.ngadam(), "passes": problem.neat_step, "adamw": problem.adamw()}
        medians = interleaved(steps, args.rounds, args.warmup)[0].medians
        count = sum(p.size for p in problem.params)
        print(
            f"| {name} | {len(problem.params)} | {count / 1e6:.4g}M | {medians['step'] * 1e3:.3f} "
            f"| {medians['passes'] * 1e3:.3f} | {medians['adamw'] * 1e3:.3f} "
            f"| {medians['step'] / medians['adamw']:.2f} |",
            flush=True,
        )
    game = game_seconds()
    print(
        f"game and bookkeeping of a step, 100 players: fused step call {game['fused'] * 1e6:.1f} µs, "
        f"two-pass path's compiled game {game['compiled'] * 1e6:.1f} µs, "
        f"as NumPy operations {game['numpy'] * 1e6:.1f} µs"
    )
    print(f"numba threading layer: {numba.threading_layer()}")


if __name__ == "__main__":
    main()

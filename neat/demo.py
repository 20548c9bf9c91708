"""The ``python -m neat`` demo: an MLP on scikit-learn's digits, NG-Adam against AdamW.

Gradients are written by hand in NumPy, so the demo needs no framework. AdamW is
NG-Adam with ``gamma = zeta = 0`` (docs/spec.md, "Required reductions"), so both runs
share every line of code but the game.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import neat

#: The benchmark report in force (tuned optimizers, several workloads and seeds).
CURRENT_REPORT = "benchmarks/results/v3/report.md"


def load_digits_split(seed: int):
    """Digits scaled to [0, 1]; 80 % train, 20 % test."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x, y = data.data.astype(np.float64) / 16.0, data.target
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.8 * len(x))
    return (x[order[:cut]], y[order[:cut]]), (x[order[cut:]], y[order[cut:]])


class MLP:
    """``x → tanh(x W1 + b1) → tanh(· W2 + b2) → · W3 + b3 → softmax``; one player per layer."""

    def __init__(self, sizes, seed: int):
        rng = np.random.default_rng(seed)
        self.params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            self.params += [rng.normal(0.0, 1.0 / np.sqrt(fan_in), (fan_in, fan_out)), np.zeros(fan_out)]
        self.players = [[2 * i, 2 * i + 1] for i in range(len(sizes) - 1)]

    def loss_and_grads(self, params, x, y):
        """Mean cross-entropy and its gradient by backpropagation."""
        activations, h = [x], x
        layers = list(zip(params[0::2], params[1::2]))
        for w, b in layers[:-1]:
            h = np.tanh(h @ w + b)
            activations.append(h)
        logits = h @ layers[-1][0] + layers[-1][1]
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(probs[np.arange(len(y)), y] + 1e-12))
        delta = probs
        delta[np.arange(len(y)), y] -= 1.0
        delta /= len(y)
        grads = [None] * len(params)
        for i in reversed(range(len(layers))):
            grads[2 * i] = activations[i].T @ delta
            grads[2 * i + 1] = delta.sum(axis=0)
            if i:
                delta = (delta @ layers[i][0].T) * (1.0 - activations[i] ** 2)
        return loss, grads

    @staticmethod
    def accuracy(params, x, y):
        h = x
        for w, b in list(zip(params[0::2], params[1::2]))[:-1]:
            h = np.tanh(h @ w + b)
        return float(np.mean(np.argmax(h @ params[-2] + params[-1], axis=1) == y))


def warm_up(optimizers, model, train_set, batch) -> float:
    """One step of each optimizer on throwaway copies of the parameters: the first call of a
    kernel set compiles it (numba: cached on disk afterwards), so the timed runs leave that out.
    Returns the seconds it took."""
    x, y = train_set
    start = time.perf_counter()
    for optimizer in optimizers:
        params = [p.copy() for p in model.params]
        _, grads = model.loss_and_grads(params, x[:batch], y[:batch])
        optimizer.step(params, grads, optimizer.init(params, players=model.players))
    return time.perf_counter() - start


def train(name, optimizer, model, train_set, test_set, steps, batch, seed, target, progress):
    """Train from the model's initial parameters; ``to_target``: first step whose smoothed
    minibatch loss (EMA 0.95) is below ``target``, or None. ``seconds``: the training loop."""
    x, y = train_set
    rng = np.random.default_rng(seed)
    params = [p.copy() for p in model.params]
    state = optimizer.init(params, players=model.players)
    smoothed, to_target, start = None, None, time.perf_counter()
    for step in progress(range(1, steps + 1), desc=f"{name:>8}"):
        index = rng.integers(0, len(x), batch)
        loss, grads = model.loss_and_grads(params, x[index], y[index])
        params, state = optimizer.step(params, grads, state)
        smoothed = loss if smoothed is None else 0.95 * smoothed + 0.05 * loss
        if to_target is None and smoothed < target:
            to_target = step
    seconds = time.perf_counter() - start
    full_loss, _ = model.loss_and_grads(params, *train_set)
    return dict(
        name=name,
        train_loss=full_loss,
        test_accuracy=model.accuracy(params, *test_set),
        steps=steps,
        to_target=to_target,
        seconds=seconds,
        diagnostics=optimizer.diagnostics(state),
    )


def _progress_bar():
    try:
        from tqdm import tqdm
    except ImportError:
        return lambda iterable, desc: iterable
    return lambda iterable, desc: tqdm(iterable, desc=desc, leave=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neat", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps per run (default 1500)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.05, help="smoothed train loss to reach")
    args = parser.parse_args(argv)

    train_set, test_set = load_digits_split(args.seed)
    model = MLP([64, 64, 32, 10], args.seed)
    progress = _progress_bar()
    optimizers = {"NG-Adam": neat.ng_adam(lr=args.lr), "AdamW": neat.ng_adam(lr=args.lr, gamma=0.0, zeta=0.0)}
    print("Compiling the step kernels (the first run only; cached on disk afterwards) ...", flush=True)
    print(f"compile and first steps: {warm_up(optimizers.values(), model, train_set, args.batch):.2f} s", flush=True)
    runs = [
        train(name, optimizer, model, train_set, test_set, args.steps, args.batch, args.seed, args.target, progress)
        for name, optimizer in optimizers.items()
    ]
    print(f"\nMLP 64-64-32-10 on scikit-learn digits, {args.steps} steps of batch {args.batch}, lr {args.lr}")
    print(
        f"{'optimizer':<10}{'train loss':>12}{'test acc':>10}{'steps':>7}"
        f"{'steps to loss<' + str(args.target):>20}{'seconds':>9}  (training loop, compile excluded)"
    )
    for run in runs:
        reached = "not reached" if run["to_target"] is None else str(run["to_target"])
        print(
            f"{run['name']:<10}{run['train_loss']:>12.4f}{run['test_accuracy']:>10.3f}"
            f"{run['steps']:>7}{reached:>20}{run['seconds']:>9.2f}"
        )
    print(f"(Both at the same untuned lr; the tuned comparison, with intervals: {CURRENT_REPORT}.)")
    info = runs[0]["diagnostics"]
    print(
        f"\nNG-Adam diagnostics after the last step (mean alignment {float(info['mean_alignment']):+.3f}, "
        f"skipped steps {int(info['skipped_steps'])}):"
    )
    print(f"{'player':<8}{'alignment':>10}{'conflict κ':>12}{'step scale λ':>14}")
    for i, (a, k, s) in enumerate(zip(info["alignment"], info["kappa"], info["step_scale"])):
        print(f"{'layer ' + str(i):<8}{float(a):>+10.3f}{float(k):>12.3f}{float(s):>14.3f}")
    return 0

"""``model.fit`` step time of ``neat.keras.NGAdam`` against ``keras.optimizers.AdamW``, side by side.

The model is W1's (MLP 784-128-64-10, batch 128, :mod:`benchmarks.workloads`), built twice
with the same initial weights and trained on the same fixed random batches (the step cost
does not depend on the data). The two optimizers are timed in alternating short epochs so
that load on the machine hits both alike; a step is the time between two consecutive
``on_train_batch_end`` calls (the callback makes Keras read the loss every step, so each
interval holds one whole step, on JAX too).

    python -m benchmarks.keras_step --backend jax --rounds 10 --batches 12
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import platform
import time

from benchmarks.timing import Log, interleaved
from benchmarks.workloads import WORKLOADS

W1_LAYERS = (784, 128, 64, 10)  # W1's "MLP 784-128-64-10"
W1_BATCH = WORKLOADS["W1"].batch_size


def w1_model(keras, seed: int):
    """W1's MLP as a Keras Sequential model (ReLU hidden layers, logits out)."""
    keras.utils.set_random_seed(seed)
    hidden = [keras.layers.Dense(width, activation="relu") for width in W1_LAYERS[1:-1]]
    return keras.Sequential([keras.Input((W1_LAYERS[0],)), *hidden, keras.layers.Dense(W1_LAYERS[-1])])


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def step_timer(keras, clock, log: Log):
    """A callback recording in ``log`` the interval between consecutive ends of training batches on ``clock``."""

    class StepTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.last = None

        def on_train_batch_end(self, batch, logs=None):
            now = clock()
            if self.last is not None:
                log.record(now - self.last)
            self.last = now

    return StepTimer()


class Contender:
    """One compiled model, its optimizer and the callback timing its steps into ``log``."""

    def __init__(self, keras, name: str, optimizer, seed: int, clock, log: Log):
        self.name = name
        self.model = w1_model(keras, seed)
        self.model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        self.callback = step_timer(keras, clock, log)

    def fit(self, x, y):
        self.model.fit(x, y, batch_size=W1_BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[self.callback])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("jax", "torch"), required=True)
    parser.add_argument("--rounds", type=int, default=10, help="alternating epochs per optimizer")
    parser.add_argument("--batches", type=int, default=12, help="batches per epoch")
    parser.add_argument("--kernels", default=None, help="NEAT kernel set (default: the fastest that applies)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads of torch and of NEAT's numba kernels (the benchmark suite uses 1)",
    )
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall time, or this process's CPU time (steadier on a machine shared with other jobs)",
    )
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend  # read once, when Keras is first imported
    import keras
    import numpy as np

    import neat.keras

    if args.backend == "torch":
        import torch

        torch.set_num_threads(args.threads)
        if importlib.util.find_spec("numba") is not None:  # the kernels NEAT may pick for CPU tensors
            import numba

            numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))

    if keras.config.backend() != args.backend:
        raise RuntimeError(f"Keras was already imported with the {keras.config.backend()} backend")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batches * W1_BATCH, W1_LAYERS[0])).astype("float32")
    y = rng.integers(0, W1_LAYERS[-1], size=len(x)).astype("int32")
    hp = dict(learning_rate=1e-3, weight_decay=1e-4, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    clock, log = CLOCKS[args.clock], Log()
    contenders = [
        Contender(keras, "keras.optimizers.AdamW", keras.optimizers.AdamW(**hp), 0, clock, log),
        Contender(keras, "neat.keras.NGAdam", neat.keras.NGAdam(**hp, kernels=args.kernels), 0, clock, log),
    ]
    epochs = {c.name: functools.partial(c.fit, x, y) for c in contenders}
    [steps] = interleaved(epochs, args.rounds, warmup=1, clocks=[log])  # warm-up: build and compile
    medians = steps.medians
    ratio = medians["neat.keras.NGAdam"] / medians["keras.optimizers.AdamW"]
    print(
        f"keras {keras.__version__}, backend {args.backend}, {platform.processor() or platform.machine()}; "
        f"W1 MLP {'-'.join(map(str, W1_LAYERS))}, batch {W1_BATCH}; {args.clock} clock"
        + (f", {args.threads} torch thread(s)" if args.backend == "torch" else "")
    )
    print("| optimizer | median step (ms) | min step (ms) | steps timed |")
    print("| --- | ---: | ---: | ---: |")
    for c in contenders:
        times = steps.samples[c.name]
        print(f"| {c.name} | {1e3 * medians[c.name]:.3f} | {1e3 * min(times):.3f} | {len(times)} |")
    print(f"ratio NGAdam / AdamW (median): {ratio:.2f}x  (target <= 1.2x)")
    return {"backend": args.backend, "clock": args.clock, "medians_s": medians, "ratio": ratio}


if __name__ == "__main__":
    main()

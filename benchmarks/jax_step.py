"""Step time under ``jax.jit`` of ``neat.optax.ng_adam`` against ``optax.adamw``, side by side.

Parameters have the shapes of a 124M-parameter GPT-2 (12 layers, width 768, vocabulary
50257, context 1024; Flax-style nested dict, so NEAT's default players are the 75
module subtrees). Gradients are fixed random arrays; each timed step is a jitted
``update`` + ``apply_updates`` with parameters and state donated. The two optimizers are
timed in alternating rounds (A, B, A, B, …) so that load on the machine hits both alike;
medians are reported, of wall time and of the process's CPU time (user + system, both
threads of XLA:CPU together; less sensitive than wall time to other programs on the
machine). For each compiled step it also counts the XLA fusions by kind and the
temporaries (``jit(...).lower(...).compile()``).

    python -m benchmarks.jax_step --rounds 9 --steps 1
"""

from __future__ import annotations

import argparse
import collections
import platform
import re

import jax
import jax.numpy as jnp
import optax

import neat.optax
from benchmarks.shapes import dense_layers, gpt2_modules, nested
from benchmarks.timing import CPU, WALL, interleaved

HP = dict(b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.1)


def random_tree(shapes, seed, scale):
    leaves, treedef = jax.tree.flatten(shapes, is_leaf=lambda x: isinstance(x, tuple))
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return treedef.unflatten([scale * jax.random.normal(k, s, jnp.float32) for k, s in zip(keys, leaves)])


def compiled_profile(compiled) -> dict:
    """What XLA made of a step: its fusions by kind (``kLoop`` elementwise loops, ``kInput``
    reductions, ``kCustom`` library fusions such as YNNPACK's), ``while`` loops, and its temporaries."""
    text = compiled.as_text()
    kinds = collections.Counter(re.findall(r"= (?:\([^)]*\)|\S+) fusion\(.*?kind=(\w+)", text))
    return {
        "fusions": sum(kinds.values()),
        **{f"fusions_{kind}": n for kind, n in sorted(kinds.items())},
        "while_loops": len(re.findall(r"= (?:\([^)]*\)|\S+) while\(", text)),
        "temp_mb": compiled.memory_analysis().temp_size_in_bytes / 1e6,
    }


class Timed:
    """One optimizer's jitted, donating train step on fixed gradients."""

    def __init__(self, name, tx, shapes, grads):
        self.name, self.grads = name, grads
        self.params = random_tree(shapes, 0, 0.02)
        self.state = tx.init(self.params)

        def train_step(params, state, grads):
            updates, state = tx.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        self.train_step = jax.jit(train_step, donate_argnums=(0, 1))
        self.profile = compiled_profile(self.train_step.lower(self.params, self.state, grads).compile())

    def step(self):
        """One step; returns the new parameters (still being computed: block on them)."""
        self.params, self.state = self.train_step(self.params, self.state, self.grads)
        return self.params


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9, help="alternating rounds")
    parser.add_argument("--steps", type=int, default=1, help="timed steps per optimizer per round")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument(
        "--shapes",
        choices=("gpt2", "blocks"),
        default="gpt2",
        help="gpt2: the whole model (124M with 12 layers); blocks: 4 blocks' dense layers (28.3M)",
    )
    args = parser.parse_args(argv)

    shapes = nested(gpt2_modules(layers=args.layers) if args.shapes == "gpt2" else dense_layers(gpt2_modules(), 4))
    grads = random_tree(shapes, 1, 1e-3)
    count = sum(x.size for x in jax.tree.leaves(grads))
    contenders = [
        Timed("optax.adamw", optax.adamw(1e-4, **HP), shapes, grads),
        Timed("neat.optax.ng_adam", neat.optax.ng_adam(1e-4, **HP), shapes, grads),
    ]
    steps = {c.name: c.step for c in contenders}
    wall, cpu = interleaved(
        steps, args.rounds, warmup=2, repeat=args.steps, block=jax.block_until_ready, clocks=(WALL, CPU)
    )
    medians, cpu_medians = wall.medians, cpu.medians
    ratio = medians["neat.optax.ng_adam"] / medians["optax.adamw"]
    cpu_ratio = cpu_medians["neat.optax.ng_adam"] / cpu_medians["optax.adamw"]
    print(
        f"jax {jax.__version__}, optax {optax.__version__}, {jax.devices()[0].platform}, "
        f"{platform.processor() or platform.machine()}; {count / 1e6:.1f}M parameters in "
        f"{len(jax.tree.leaves(grads))} tensors, {contenders[1].state.num_players} NEAT players"
    )
    print(
        "| optimizer | median step (ms) | min step (ms) | median CPU time (ms) | steps timed "
        "| fusions (by kind) | while loops | temporaries (MB) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for c in contenders:
        kinds = ", ".join(f"{key[len('fusions_') :]} {n}" for key, n in c.profile.items() if key.startswith("fusions_"))
        print(
            f"| {c.name} | {1e3 * medians[c.name]:.1f} | {1e3 * min(wall.samples[c.name]):.1f} "
            f"| {1e3 * cpu_medians[c.name]:.1f} | {len(wall.samples[c.name])} | {c.profile['fusions']} ({kinds}) "
            f"| {c.profile['while_loops']} "
            f"| {c.profile['temp_mb']:.0f} |"
        )
    print(f"ratio ng_adam / adamw (median): {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU time  (target <= 1.5x)")
    return {
        "medians_s": medians,
        "cpu_medians_s": cpu_medians,
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
        "parameters": count,
        "profiles": {c.name: c.profile for c in contenders},
    }


if __name__ == "__main__":
    main()

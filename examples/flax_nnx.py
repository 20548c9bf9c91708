"""Train a Flax NNX model with ``nnx.Optimizer(model, neat.optax.ng_adam(...), wrt=nnx.Param)``.

    python examples/flax_nnx.py --steps 200

Each ``nnx.Linear`` is one NEAT player (its parent path in the parameter state);
the players form a chain in order. Prints the loss and NEAT's per-player diagnostics.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import optax
from flax import nnx

import neat
import neat.optax


class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(8, 32, rngs=rngs)
        self.out = nnx.Linear(32, 1, rngs=rngs)

    def __call__(self, x):
        return self.out(nnx.gelu(self.hidden(x)))


def data(key, size=256):
    """A noisy regression target: y = sin(x·w)."""
    x = jax.random.normal(key, (size, 8))
    w = jnp.linspace(-1.0, 1.0, 8)
    return x, jnp.sin(x @ w)[:, None]


@nnx.jit
def train_step(model, optimizer, x, y):
    def loss_fn(model):
        return jnp.mean((model(x) - y) ** 2)

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


def main(argv=None) -> tuple[float, float]:
    """Train; return the first and the last step's loss."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)

    model = MLP(nnx.Rngs(0))
    schedule = optax.warmup_cosine_decay_schedule(0.0, 1e-2, warmup_steps=10, decay_steps=max(args.steps, 11))
    tx = optax.chain(optax.clip_by_global_norm(1.0), neat.optax.ng_adam(schedule, weight_decay=1e-4))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    x, y = data(jax.random.key(1))
    losses = []
    for step in range(args.steps):
        loss = train_step(model, optimizer, x, y)
        losses.append(float(loss))
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {losses[-1]:.5f}")
    ng_state = nnx.as_pure(optimizer.opt_state)[1]  # the chain's second part: NEAT's state
    info = neat.diagnostics(ng_state)
    scales = ", ".join(f"{float(s):.3f}" for s in info["step_scale"])
    print(f"step scale per player: [{scales}]; mean alignment {float(info['mean_alignment']):+.3f}")
    return losses[0], losses[-1]


if __name__ == "__main__":
    main()

"""Train a Flax Linen model with a ``TrainState`` whose ``tx`` is ``neat.optax.ng_adam``.

    python examples/flax_linen_trainstate.py --steps 200

Each ``nn.Dense`` (``params['Dense_0']``, ``params['Dense_1']``) is one NEAT player;
``state.apply_gradients`` calls ``tx.update(grads, opt_state, params)`` as for any optax optimizer.
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

import neat
import neat.optax


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.gelu(nn.Dense(32)(x)))


def data(key, size=256):
    """A noisy regression target: y = sin(x·w)."""
    x = jax.random.normal(key, (size, 8))
    w = jnp.linspace(-1.0, 1.0, 8)
    return x, jnp.sin(x @ w)[:, None]


@jax.jit
def train_step(state: train_state.TrainState, x, y):
    def loss_fn(params):
        return jnp.mean((state.apply_fn(params, x) - y) ** 2)

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    return state.apply_gradients(grads=grads), loss


def main(argv=None) -> tuple[float, float]:
    """Train; return the first and the last step's loss."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)

    model = MLP()
    x, y = data(jax.random.key(1))
    params = model.init(jax.random.key(0), x[:1])
    tx = neat.optax.ng_adam(optax.cosine_decay_schedule(1e-2, max(args.steps, 1)), weight_decay=1e-4)
    state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)
    losses = []
    for step in range(args.steps):
        state, loss = train_step(state, x, y)
        losses.append(float(loss))
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {losses[-1]:.5f}")
    info = neat.diagnostics(state.opt_state)
    scales = ", ".join(f"{float(s):.3f}" for s in info["step_scale"])
    print(f"step scale per player: [{scales}]; mean alignment {float(info['mean_alignment']):+.3f}")
    return losses[0], losses[-1]


if __name__ == "__main__":
    main()

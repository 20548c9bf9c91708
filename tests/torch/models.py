"""Small models and a training loop shared by the torch tests."""

from __future__ import annotations

import torch

from neat.conformance.golden import golden_hyperparameters


def mlp(seed: int = 0, dtype=torch.float32) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)
    ).to(dtype)


def batch(seed: int = 1, n: int = 32, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=generator, dtype=dtype), torch.randn(n, 3, generator=generator, dtype=dtype)


def train(model, optimizer, steps: int, data=None, scheduler=None):
    """``steps`` full-batch MSE steps; returns the parameters (detached copies)."""
    x, y = data if data is not None else batch(dtype=next(model.parameters()).dtype)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return [p.detach().clone() for p in model.parameters()]


def assert_close_lists(actual, expected, rtol, atol):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, rtol=rtol, atol=atol)


HP = golden_hyperparameters(lr=0.02, gamma=0.8, zeta=0.3, mu=1.5)

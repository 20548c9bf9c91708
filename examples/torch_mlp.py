"""Train a small MLP on scikit-learn's digits with neat.torch.NGAdam.

The only change from a plain AdamW script is the optimizer line::

    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)   # before
    optimizer = neat.torch.NGAdam(model, lr=3e-3, weight_decay=1e-4)                # after

Run: ``python examples/torch_mlp.py [--adamw]``.
"""

from __future__ import annotations

import argparse

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import neat.torch


def data():
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    return train_test_split(x, y, test_size=0.25, random_state=0)


def main(argv=None):
    parser = argparse.ArgumentParser(description="digits MLP with NG-Adam (or AdamW to compare)")
    parser.add_argument("--adamw", action="store_true", help="use torch.optim.AdamW instead")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    x_train, x_test, y_train, y_test = data()
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)
    )
    if args.adamw:
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    else:
        optimizer = neat.torch.NGAdam(model, lr=3e-3, weight_decay=1e-4)
    for epoch in range(args.epochs):
        for batch in torch.randperm(len(x_train)).split(64):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
        if (epoch + 1) % 10 == 0:
            with torch.no_grad():
                accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
            print(f"epoch {epoch + 1}: test accuracy {accuracy:.3f}")
    if not args.adamw:
        print("step multipliers per layer:", [round(v, 3) for v in optimizer.diagnostics()["step_scale"].tolist()])


if __name__ == "__main__":
    main()

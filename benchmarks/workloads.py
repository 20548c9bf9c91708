"""Workloads W1–W5: a model, a batch sampler, a training loss and a validation metric.

Every size here is the *recorded* scale (see ``Workload.scale``); the CLI can shorten a
run with ``--steps`` (the smoke test does) and the JSON lines record what was used.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from benchmarks import data


@dataclass(frozen=True)
class Workload:
    """One benchmark problem. ``metric`` is a validation number; ``higher_is_better`` orders it."""

    name: str
    title: str
    metric: str
    higher_is_better: bool
    steps: int
    eval_every: int
    batch_size: int
    build: Callable[[], Problem]
    needs: str = ""  # the package a workload's data comes from, when not a Python dependency
    scale: dict = field(default_factory=dict)

    def better(self, a: float, b: float) -> bool:
        """True when metric ``a`` is at least as good as ``b``."""
        return a >= b if self.higher_is_better else a <= b


@dataclass
class Problem:
    """The tensors and functions of one workload instance (built once per process)."""

    model_factory: Callable[[], nn.Module]
    sample: Callable[[torch.Generator, int], tuple]
    loss: Callable[[nn.Module, tuple], torch.Tensor]
    evaluate: Callable[[nn.Module], dict]


def _tensor(x):
    return torch.from_numpy(np.ascontiguousarray(x))


def _sampler(*arrays):
    def sample(gen: torch.Generator, batch: int):
        index = torch.randint(0, len(arrays[0]), (batch,), generator=gen)
        return tuple(a[index] for a in arrays)

    return sample


def _classification(x_train, y_train, x_val, y_val, model_factory) -> Problem:
    x_train, y_train, x_val, y_val = map(_tensor, (x_train, y_train, x_val, y_val))

    def loss(model, batch):
        x, y = batch
        return F.cross_entropy(model(x), y)

    @torch.no_grad()
    def evaluate(model):
        logits = model(x_val)
        return dict(
            val_loss=F.cross_entropy(logits, y_val).item(), accuracy=(logits.argmax(1) == y_val).float().mean().item()
        )

    return Problem(model_factory, _sampler(x_train, y_train), loss, evaluate)


# --- W1: MLP on Fashion-MNIST -------------------------------------------------------------


def _w1() -> Problem:
    d = data.fashion_mnist()
    return _classification(
        d["x_train"].reshape(-1, 784),
        d["y_train"],
        d["x_val"].reshape(-1, 784),
        d["y_val"],
        lambda: nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)),
    )


# --- W2: small CNN on Fashion-MNIST -------------------------------------------------------


def _w2() -> Problem:
    d = data.fashion_mnist()
    val = slice(0, 2000)  # a fixed 2000-image validation subset keeps evaluation cheap on 2 cores

    def cnn():
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 7 * 7, 10),
        )

    return _classification(d["x_train"][:, None], d["y_train"], d["x_val"][val, None], d["y_val"][val], cnn)


# --- W3: byte-level transformer language model on the stdlib sources ----------------------


class ByteTransformer(nn.Module):
    """A pre-norm causal transformer over bytes: embedding, ``layers`` blocks, tied-free head."""

    def __init__(self, context: int, width: int, layers: int, heads: int):
        super().__init__()
        self.embed = nn.Embedding(256, width)
        self.position = nn.Embedding(context, width)
        block = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 256)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(context), persistent=False)

    def forward(self, tokens):
        n = tokens.shape[1]
        h = self.embed(tokens) + self.position.weight[:n]
        h = self.blocks(h, mask=self.mask[:n, :n], is_causal=True)
        return self.head(self.norm(h))


W3_SIZE = dict(context=64, width=64, layers=2, heads=4)


def _w3() -> Problem:
    text = data.stdlib_text()
    train, val = _tensor(text["train"].astype(np.int64)), _tensor(text["val"].astype(np.int64))
    context = W3_SIZE["context"]
    val_starts = torch.arange(0, len(val) - context - 1, (len(val) - context - 1) // 64)[:64]

    def windows(source, starts):
        offsets = torch.arange(context + 1)
        chunk = source[starts[:, None] + offsets[None, :]]
        return chunk[:, :-1], chunk[:, 1:]

    def sample(gen, batch):
        return windows(train, torch.randint(0, len(train) - context - 1, (batch,), generator=gen))

    def loss(model, batch):
        x, y = batch
        return F.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1))

    @torch.no_grad()
    def evaluate(model):
        x, y = windows(val, val_starts)
        nats = F.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1)).item()
        return dict(val_loss=nats, bits_per_byte=nats / math.log(2))

    return Problem(lambda: ByteTransformer(**W3_SIZE), sample, loss, evaluate)


# --- W4: deep linear network (8 layers) on digits -----------------------------------------


def _w4() -> Problem:
    d = data.digits()
    sizes = [64] + [32] * 7 + [10]

    def deep_linear():
        return nn.Sequential(*(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])))

    return _classification(d["x_train"], d["y_train"], d["x_val"], d["y_val"], deep_linear)


# --- W5: MultiFashion, two tasks on a shared trunk ----------------------------------------


class TwoHeads(nn.Module):
    """A shared MLP trunk and one linear head per task (left item, right item)."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
        self.left = nn.Linear(64, 10)
        self.right = nn.Linear(64, 10)

    def forward(self, x):
        h = self.trunk(x)
        return self.left(h), self.right(h)


def _w5() -> Problem:
    x_train, y_train = map(_tensor, data.multi_fashion(30_000, seed=1, split="train"))
    x_val, y_val = map(_tensor, data.multi_fashion(2_000, seed=2, split="val"))

    def loss(model, batch):
        x, y = batch
        left, right = model(x)
        return F.cross_entropy(left, y[:, 0]) + F.cross_entropy(right, y[:, 1])

    @torch.no_grad()
    def evaluate(model):
        left, right = model(x_val)
        acc_l = (left.argmax(1) == y_val[:, 0]).float().mean().item()
        acc_r = (right.argmax(1) == y_val[:, 1]).float().mean().item()
        val_loss = (F.cross_entropy(left, y_val[:, 0]) + F.cross_entropy(right, y_val[:, 1])).item()
        return dict(val_loss=val_loss, accuracy_left=acc_l, accuracy_right=acc_r, mean_accuracy=(acc_l + acc_r) / 2)

    return Problem(TwoHeads, _sampler(x_train, y_train), loss, evaluate)


FASHION = "Debian package dataset-fashion-mnist"
WORKLOADS = {
    w.name: w
    for w in [
        Workload(
            "W1",
            "MLP 784-128-64-10 on Fashion-MNIST",
            "accuracy",
            True,
            400,
            40,
            128,
            _w1,
            FASHION,
            dict(model="MLP 784-128-64-10", train_images=55000, val_images=5000),
        ),
        Workload(
            "W2",
            "CNN (2 conv, 8/16 channels) on Fashion-MNIST",
            "accuracy",
            True,
            300,
            30,
            64,
            _w2,
            FASHION,
            dict(model="conv8-conv16-linear", train_images=55000, val_images=2000),
        ),
        Workload(
            "W3",
            "byte-level transformer LM on the Python stdlib sources",
            "bits_per_byte",
            False,
            300,
            30,
            32,
            _w3,
            "",
            dict(model=f"transformer {W3_SIZE}", corpus_bytes=2_000_000, val_windows=64),
        ),
        Workload(
            "W4",
            "deep linear network (8 layers, width 32) on digits",
            "val_loss",
            False,
            1500,
            50,
            64,
            _w4,
            "",
            dict(model="8 linear layers 64-32x7-10, no activation", train=1437, val=360),
        ),
        Workload(
            "W5",
            "MultiFashion: two overlaid items, shared trunk, two heads",
            "mean_accuracy",
            True,
            400,
            40,
            128,
            _w5,
            FASHION,
            dict(model="trunk 784-128-64, heads 64-10 x2", train_pairs=30000, val_pairs=2000),
        ),
    ]
}


def available(workload: Workload) -> tuple[bool, str]:
    """Whether the workload's data is installed here, and if not, why."""
    if workload.needs == FASHION and not data.fashion_mnist_available():
        return False, f"Fashion-MNIST missing: {data.FASHION_MNIST_INSTALL}"
    return True, ""

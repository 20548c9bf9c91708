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

EVAL_FRACTION = 0.025  # evaluate at least every 2.5 % of a run


@dataclass(frozen=True)
class Workload:
    """One benchmark problem. ``metric`` is read on the validation split (trial selection) and on
    the held-out test split (targets, results); ``higher_is_better`` orders it."""

    name: str
    title: str
    metric: str
    higher_is_better: bool
    steps: int
    batch_size: int
    build: Callable[..., Problem]  # build(device="cpu")
    needs: str = ""  # the package a workload's data comes from, when not a Python dependency
    scale: dict = field(default_factory=dict)

    def better(self, a: float, b: float) -> bool:
        """True when metric ``a`` is at least as good as ``b``."""
        return a >= b if self.higher_is_better else a <= b

    def eval_every(self, steps: int | None = None) -> int:
        """Steps between evaluations: at most ``EVAL_FRACTION`` of the run."""
        return max(1, math.floor(EVAL_FRACTION * (steps or self.steps)))


@dataclass
class Problem:
    """The tensors and functions of one workload instance (built once per process).

    ``evaluate(model, split)`` with ``split`` "val" or "test" returns ``{metric name: value}``."""

    model_factory: Callable[[], nn.Module]
    sample: Callable[[torch.Generator, int], tuple]
    loss: Callable[[nn.Module, tuple], torch.Tensor]
    evaluate: Callable[[nn.Module, str], dict]
    device: str = "cpu"


def _tensor(x, device="cpu"):
    return torch.from_numpy(np.ascontiguousarray(x)).to(device)


def _sampler(*arrays):
    def sample(gen: torch.Generator, batch: int):
        index = torch.randint(0, len(arrays[0]), (batch,), generator=gen).to(arrays[0].device)
        return tuple(a[index] for a in arrays)

    return sample


def _on(factory, device):
    def make():
        return factory().to(device)

    return make


def _classification(train, splits: dict, model_factory, device) -> Problem:
    """``train`` = (x, y); ``splits`` = {"val": (x, y), "test": (x, y)}."""
    x_train, y_train = (_tensor(a, device) for a in train)
    held = {name: tuple(_tensor(a, device) for a in xy) for name, xy in splits.items()}

    def loss(model, batch):
        x, y = batch
        return F.cross_entropy(model(x), y)

    @torch.no_grad()
    def evaluate(model, split="val"):
        x, y = held[split]
        logits = model(x)
        return dict(val_loss=F.cross_entropy(logits, y).item(), accuracy=(logits.argmax(1) == y).float().mean().item())

    return Problem(_on(model_factory, device), _sampler(x_train, y_train), loss, evaluate, str(device))


# --- W1: MLP on Fashion-MNIST -------------------------------------------------------------

FASHION_TEST = 10_000  # the whole t10k file


def _w1(device="cpu") -> Problem:
    d = data.fashion_mnist()
    return _classification(
        (d["x_train"].reshape(-1, 784), d["y_train"]),
        dict(val=(d["x_val"].reshape(-1, 784), d["y_val"]), test=(d["x_test"].reshape(-1, 784), d["y_test"])),
        lambda: nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)),
        device,
    )


# --- W2: small CNN on Fashion-MNIST -------------------------------------------------------

W2_VAL, W2_TEST = 2000, 2000  # fixed subsets keep evaluation cheap on 2 cores


def _w2(device="cpu") -> Problem:
    d = data.fashion_mnist()

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

    return _classification(
        (d["x_train"][:, None], d["y_train"]),
        dict(
            val=(d["x_val"][:W2_VAL, None], d["y_val"][:W2_VAL]),
            test=(d["x_test"][:W2_TEST, None], d["y_test"][:W2_TEST]),
        ),
        cnn,
        device,
    )


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
W3_WINDOWS = dict(val=64, test=128)  # evenly spaced evaluation windows per split


def _w3(device="cpu", width: int = W3_SIZE["width"]) -> Problem:
    text = data.stdlib_text()
    size = {**W3_SIZE, "width": width}
    context = size["context"]
    train = _tensor(text["train"].astype(np.int64), device)
    held = {split: _tensor(text[split].astype(np.int64), device) for split in W3_WINDOWS}
    starts = {
        split: torch.linspace(0, len(held[split]) - context - 2, count).long().to(device)
        for split, count in W3_WINDOWS.items()
    }

    def windows(source, begin):
        offsets = torch.arange(context + 1, device=source.device)
        chunk = source[begin[:, None] + offsets[None, :]]
        return chunk[:, :-1], chunk[:, 1:]

    def sample(gen, batch):
        return windows(train, torch.randint(0, len(train) - context - 1, (batch,), generator=gen).to(device))

    def loss(model, batch):
        x, y = batch
        return F.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1))

    @torch.no_grad()
    def evaluate(model, split="val"):
        x, y = windows(held[split], starts[split])
        nats = F.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1)).item()
        return dict(val_loss=nats, bits_per_byte=nats / math.log(2))

    return Problem(_on(lambda: ByteTransformer(**size), device), sample, loss, evaluate, str(device))


# --- W4: deep linear network (8 layers) on digits -----------------------------------------


def _w4(device="cpu") -> Problem:
    d = data.digits()
    sizes = [64] + [32] * 7 + [10]

    def deep_linear():
        return nn.Sequential(*(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])))

    return _classification(
        (d["x_train"], d["y_train"]),
        dict(val=(d["x_val"], d["y_val"]), test=(d["x_test"], d["y_test"])),
        deep_linear,
        device,
    )


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


W5_PAIRS = dict(train=(30_000, 1), val=(2_000, 2), test=(5_000, 3))  # split: (pairs, pairing seed)


def _w5(device="cpu") -> Problem:
    made = {split: data.multi_fashion(n, seed=seed, split=split) for split, (n, seed) in W5_PAIRS.items()}
    x_train, y_train = (_tensor(a, device) for a in made["train"])
    held = {split: tuple(_tensor(a, device) for a in made[split]) for split in ("val", "test")}

    def loss(model, batch):
        x, y = batch
        left, right = model(x)
        return F.cross_entropy(left, y[:, 0]) + F.cross_entropy(right, y[:, 1])

    @torch.no_grad()
    def evaluate(model, split="val"):
        x, y = held[split]
        left, right = model(x)
        acc_l = (left.argmax(1) == y[:, 0]).float().mean().item()
        acc_r = (right.argmax(1) == y[:, 1]).float().mean().item()
        val_loss = (F.cross_entropy(left, y[:, 0]) + F.cross_entropy(right, y[:, 1])).item()
        return dict(val_loss=val_loss, accuracy_left=acc_l, accuracy_right=acc_r, mean_accuracy=(acc_l + acc_r) / 2)

    return Problem(_on(TwoHeads, device), _sampler(x_train, y_train), loss, evaluate, str(device))


FASHION = "Debian package dataset-fashion-mnist"
V3_WIDTHS = (48, 96, 144, 192)  # protocol v3's size trend (benchmarks/plan3.py); 64 is W3 itself


def w3_parameters(width: int) -> int:
    """Parameters of W3's transformer at ``width`` (the size trend's x axis)."""
    return sum(p.numel() for p in ByteTransformer(**{**W3_SIZE, "width": width}).parameters())


def _w3_width(width: int):
    def build(device="cpu"):
        return _w3(device, width)

    return build


WORKLOADS = {
    w.name: w
    for w in [
        Workload(
            "W1",
            "MLP 784-128-64-10 on Fashion-MNIST",
            "accuracy",
            True,
            400,
            128,
            _w1,
            FASHION,
            dict(model="MLP 784-128-64-10", train_images=55000, val_images=5000, test_images=FASHION_TEST),
        ),
        Workload(
            "W2",
            "CNN (2 conv, 8/16 channels) on Fashion-MNIST",
            "accuracy",
            True,
            300,
            64,
            _w2,
            FASHION,
            dict(model="conv8-conv16-linear", train_images=55000, val_images=W2_VAL, test_images=W2_TEST),
        ),
        Workload(
            "W3",
            "byte-level transformer LM on the Python stdlib sources (width 64)",
            "bits_per_byte",
            False,
            300,
            32,
            _w3,
            "",
            dict(model=f"transformer {W3_SIZE}", corpus_bytes=2_000_000, windows=W3_WINDOWS),
        ),
        Workload(
            "W4",
            "deep linear network (8 layers, width 32) on digits",
            "val_loss",
            False,
            1500,
            64,
            _w4,
            "",
            dict(model="8 linear layers 64-32x7-10, no activation", train=1257, val=270, test=270),
        ),
        Workload(
            "W5",
            "MultiFashion: two overlaid items, shared trunk, two heads",
            "mean_accuracy",
            True,
            400,
            128,
            _w5,
            FASHION,
            dict(model="trunk 784-128-64, heads 64-10 x2", **{f"{k}_pairs": v[0] for k, v in W5_PAIRS.items()}),
        ),
        *(
            Workload(
                f"W3-{width}",
                f"W3 at width {width} (size trend)",
                "bits_per_byte",
                False,
                300,
                32,
                _w3_width(width),
                "",
                dict(
                    model=f"transformer { ({**W3_SIZE, 'width': width}) }", corpus_bytes=2_000_000, windows=W3_WINDOWS
                ),
            )
            for width in (*V3_WIDTHS, 128, 256)
        ),
    ]
}
MAIN = ["W1", "W2", "W3", "W4", "W5"]
SIZE_TREND = {"W3": 64, "W3-128": 128, "W3-256": 256}


def available(workload: Workload) -> tuple[bool, str]:
    """Whether the workload's data is installed here, and if not, why and how to get it."""
    if workload.needs == FASHION and not data.fashion_mnist_available():
        where = data.FASHION_MNIST_DIR
        return False, f"Fashion-MNIST missing under {where}; install it with: {data.FASHION_MNIST_INSTALL}"
    return True, ""

"""Data that ships with packages (nothing is downloaded at run time).

Every data set has three disjoint splits: ``train`` (batches), ``val`` (tuning: trial selection)
and ``test`` (held out: targets and every reported result).

* Fashion-MNIST: Debian package ``dataset-fashion-mnist`` (idx files).
* Digits: ``sklearn.datasets.load_digits`` (bundled with scikit-learn).
* Text: the Python standard library's own ``.py`` sources, as bytes.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import sysconfig
from pathlib import Path

import numpy as np

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_INSTALL = "apt-get update && apt-get install -y dataset-fashion-mnist"
VALIDATION_SIZE = 5000


class MissingData(RuntimeError):
    """A data set the workload needs is not installed."""


FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def fashion_mnist_available() -> bool:
    return all((FASHION_MNIST_DIR / name).exists() for name in FASHION_MNIST_FILES)


def _read_idx(path: Path) -> np.ndarray:
    """An idx file (big-endian header: magic, then one uint32 per dimension) as uint8."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@functools.lru_cache(maxsize=1)
def fashion_mnist() -> dict:
    """Fashion-MNIST, images in [0, 1] as float32 (N, 28, 28): the last ``VALIDATION_SIZE`` images
    of the training file are the validation split, the t10k file (10,000 images) the test split."""
    if not fashion_mnist_available():
        raise MissingData(
            f"Fashion-MNIST is not installed under {FASHION_MNIST_DIR}; install it with: {FASHION_MNIST_INSTALL}"
        )
    images = _read_idx(FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    labels = _read_idx(FASHION_MNIST_DIR / "train-labels-idx1-ubyte.gz").astype(np.int64)
    cut = len(images) - VALIDATION_SIZE
    test_images = _read_idx(FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    test_labels = _read_idx(FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    return dict(
        x_train=images[:cut],
        y_train=labels[:cut],
        x_val=images[cut:],
        y_val=labels[cut:],
        x_test=test_images,
        y_test=test_labels,
    )


@functools.lru_cache(maxsize=1)
def digits() -> dict:
    """scikit-learn's 8×8 digits (1,797), standardised with training statistics; a fixed shuffled
    70/15/15 train/validation/test split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x, y = bunch.data.astype(np.float32), bunch.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    cut, cut2 = int(0.7 * len(x)), int(0.85 * len(x))
    mean, std = x[:cut].mean(0), x[:cut].std(0) + 1.0
    x = (x - mean) / std
    return dict(
        x_train=x[:cut], y_train=y[:cut], x_val=x[cut:cut2], y_val=y[cut:cut2], x_test=x[cut2:], y_test=y[cut2:]
    )


def multi_fashion(pairs: int, seed: int, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Two Fashion-MNIST items overlaid (pixel-wise max), one shifted 4 px left, one 4 px right.

    Returns images (pairs, 28, 28) and labels (pairs, 2) = (left item, right item). The pairing
    is fixed by ``seed``, independent of the training seed.
    """
    data = fashion_mnist()
    x, y = data[f"x_{split}"], data[f"y_{split}"]
    rng = np.random.default_rng(seed)
    left, right = rng.integers(0, len(x), pairs), rng.integers(0, len(x), pairs)
    canvas = np.maximum(np.roll(x[left], -4, axis=2), np.roll(x[right], 4, axis=2))
    return canvas, np.stack([y[left], y[right]], axis=1)


@functools.lru_cache(maxsize=1)
def stdlib_text(max_bytes: int = 2_000_000) -> dict:
    """The first ``max_bytes`` of the sorted top-level ``.py`` files of this Python's standard
    library, as uint8: the first 80 % is the training text, the next 10 % the validation text, the
    last 10 % the test text. ``digest`` identifies the corpus."""
    root = Path(sysconfig.get_paths()["stdlib"])
    chunks, total = [], 0
    for path in sorted(root.glob("*.py")):
        chunk = path.read_bytes()
        chunks.append(chunk)
        total += len(chunk)
        if total >= max_bytes:
            break
    text = np.frombuffer(b"".join(chunks)[:max_bytes], dtype=np.uint8)
    cut, cut2 = int(0.8 * len(text)), int(0.9 * len(text))
    return dict(
        train=text[:cut],
        val=text[cut:cut2],
        test=text[cut2:],
        digest=hashlib.sha256(text.tobytes()).hexdigest()[:16],
        source=str(root),
    )

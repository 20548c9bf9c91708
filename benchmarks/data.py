"""Data that ships with packages (nothing is downloaded at run time).

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


def fashion_mnist_available() -> bool:
    return (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists()


def _read_idx(path: Path) -> np.ndarray:
    """An idx file (big-endian header: magic, then one uint32 per dimension) as uint8."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@functools.lru_cache(maxsize=1)
def fashion_mnist() -> dict:
    """Train/validation split of the Fashion-MNIST training file: images in [0, 1] as float32 (N, 28, 28).

    The last ``VALIDATION_SIZE`` training images are the validation set; the test file is not used.
    """
    if not fashion_mnist_available():
        raise MissingData(
            f"Fashion-MNIST is not installed under {FASHION_MNIST_DIR}; install it with: {FASHION_MNIST_INSTALL}"
        )
    images = _read_idx(FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    labels = _read_idx(FASHION_MNIST_DIR / "train-labels-idx1-ubyte.gz").astype(np.int64)
    cut = len(images) - VALIDATION_SIZE
    return dict(x_train=images[:cut], y_train=labels[:cut], x_val=images[cut:], y_val=labels[cut:])


@functools.lru_cache(maxsize=1)
def digits() -> dict:
    """scikit-learn's 8×8 digits, standardised with training statistics; a fixed 80/20 split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x, y = bunch.data.astype(np.float32), bunch.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    cut = int(0.8 * len(x))
    mean, std = x[:cut].mean(0), x[:cut].std(0) + 1.0
    x = (x - mean) / std
    return dict(x_train=x[:cut], y_train=y[:cut], x_val=x[cut:], y_val=y[cut:])


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
    library, as uint8; the last 10 % is the validation text. ``digest`` identifies the corpus."""
    root = Path(sysconfig.get_paths()["stdlib"])
    chunks, total = [], 0
    for path in sorted(root.glob("*.py")):
        chunk = path.read_bytes()
        chunks.append(chunk)
        total += len(chunk)
        if total >= max_bytes:
            break
    text = np.frombuffer(b"".join(chunks)[:max_bytes], dtype=np.uint8)
    cut = int(0.9 * len(text))
    return dict(
        train=text[:cut], val=text[cut:], digest=hashlib.sha256(text.tobytes()).hexdigest()[:16], source=str(root)
    )

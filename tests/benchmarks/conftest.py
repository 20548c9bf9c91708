"""The benchmark suite trains torch models (the ``torch`` extra)."""

import gzip

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch is not installed (optional framework: pip install -e '.[torch]')")

from benchmarks import data  # noqa: E402

#: The stand-in's image counts: enough training images for the validation split and a training split.
STAND_IN_IMAGES = {"train": data.VALIDATION_SIZE + 600, "t10k": 2000}


def _write_idx(path, array: np.ndarray) -> None:
    """``array`` (uint8) as a gzipped idx file: magic ``0 0 8 ndim``, one big-endian uint32 per dimension."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fashion_mnist_stand_in(tmp_path, monkeypatch):
    """Fashion-MNIST's four idx files, generated (28×28 images, 10 classes, a class's images share a
    pattern), put where :mod:`benchmarks.data` reads them: the Fashion-MNIST workloads run on a
    machine without the Debian package."""
    rng = np.random.default_rng(0)
    patterns = rng.integers(0, 256, (10, 28, 28))
    for split, count in STAND_IN_IMAGES.items():
        labels = rng.integers(0, 10, count)
        noise = rng.integers(0, 64, (count, 28, 28))
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", np.clip(patterns[labels] // 2 + noise, 0, 255))
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", labels)
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", tmp_path)
    data.fashion_mnist.cache_clear()
    yield tmp_path
    data.fashion_mnist.cache_clear()

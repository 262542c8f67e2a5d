"""The images the epoch benchmarks train on."""

from __future__ import annotations

import numpy as np

from fcnn.data.dataset import Dataset
from fcnn.data.errors import DataError
from fcnn.data.mnist import load as load_mnist
from fcnn.data.paths import data_root

__all__ = ["epoch_data"]


def epoch_data(quick: bool, data_dir: str | None) -> tuple[Dataset, str]:
    """The MNIST training set and a line naming it; random 28x28 images when MNIST is not
    found (timings only); its first 2,000 images with ``quick``."""
    try:
        train, _ = load_mnist(data_root(data_dir), allow_download=False)
        source = "MNIST training set"
    except DataError:
        rng = np.random.default_rng(0)
        train = Dataset(
            rng.integers(0, 256, (60_000, 1, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, 60_000),
            tuple("0123456789"),
        )
        source = "random 28x28 images (MNIST not found; timings only)"
    if quick:
        train = train.subset(np.arange(2_000))
    return train, source

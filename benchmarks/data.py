"""The networks and images the epoch benchmarks train on: one job per row of the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fcnn import models
from fcnn.data.dataset import Dataset
from fcnn.data.errors import DataError
from fcnn.data.paths import data_root
from fcnn.data.registry import Request, load_dataset

__all__ = ["EPOCH_BATCH", "EPOCH_JOBS", "epoch_job"]

REPO = Path(__file__).resolve().parents[1]

# job -> (preset, data set, image side for HAM10000 or None); the DermaScan rows train the
# network of configs/dermascan.yaml (its model_options) at 64x64 and at 96x96
EPOCH_JOBS: dict[str, tuple[str, str, int | None]] = {
    "lenet_mnist": ("lenet_mnist", "mnist", None),
    "bn_net_mnist": ("bn_net_mnist", "mnist", None),
    "tiny_vgg_cifar": ("tiny_vgg_cifar", "cifar10", None),
    "dermascan_64": ("dermascan_cnn", "ham10000", 64),
    "dermascan_96": ("dermascan_cnn", "ham10000", 96),
    "airbench_cifar": ("airbench_cifar", "cifar10", None),  # configs/cifar10.yaml's network
}
# the batch of a job's epoch: 128, or its recipe's (airbench trains at 1,024)
EPOCH_BATCH: dict[str, int] = {"airbench_cifar": 1024}
QUICK_IMAGES = 2_000
_RANDOM_IMAGES = {"mnist": 60_000, "cifar10": 50_000, "ham10000": 3_400}  # their usual sizes


def _dermascan_options() -> dict:
    from fcnn.training.config import load_config

    return dict(load_config(REPO / "configs" / "dermascan.yaml").model_options)


def epoch_job(name: str, quick: bool, data_dir: str | None) -> tuple[models.Preset, Dataset, str]:
    """The preset, its training images and a line naming them, for the job ``name`` of
    :data:`EPOCH_JOBS`; random images of the same shape when the data set is not found
    (timings only); the first :data:`QUICK_IMAGES` images with ``quick``."""
    if name not in EPOCH_JOBS:
        raise SystemExit(f"unknown epoch job {name!r}; choose from {', '.join(EPOCH_JOBS)}")
    preset_name, dataset, side = EPOCH_JOBS[name]
    options = {**_dermascan_options(), "image_size": side} if side else {}
    preset = models.get(preset_name, **options)
    try:
        size = (side, side) if side else None
        request = Request(data_root(data_dir), image_size=size, allow_download=False)
        data, source = load_dataset(dataset, request).train, f"{dataset} training set"
    except (DataError, FileNotFoundError):
        rng = np.random.default_rng(0)
        n, k = _RANDOM_IMAGES[dataset], 7 if dataset == "ham10000" else 10
        data = Dataset(
            rng.integers(0, 256, (n, *preset.input_shape), dtype=np.uint8),
            rng.integers(0, k, n),
            tuple(str(i) for i in range(k)),
        )
        source = f"random images of {dataset}'s shape ({dataset} not found; timings only)"
    if quick:
        data = data.subset(np.arange(min(QUICK_IMAGES, len(data))))
    return preset, data, f"{source}, {len(data)} images of {preset.input_shape}"

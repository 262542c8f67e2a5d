"""The data of a training run: load, limit, split off validation, fit normalization."""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np

from fcnn import random as fr
from fcnn.data.dataset import Dataset, train_val_split
from fcnn.data.paths import data_root
from fcnn.data.registry import load_dataset
from fcnn.data.transforms import Normalization, fit_normalization
from fcnn.training.config import Config

__all__ = ["PreparedData", "class_weights", "prepare_data", "split_seed"]


@attrs.frozen(eq=False)
class PreparedData:
    train: Dataset
    val: Dataset
    test: Dataset
    normalization: Normalization
    notes: tuple[str, ...] = ()  # rows the loader skipped, and why


def _limit(data: Dataset, limit: int | None, key: fr.Key) -> Dataset:
    if limit is None or limit >= len(data):
        return data
    keep = np.sort(fr.generator(key).permutation(len(data))[:limit])
    return data.subset(keep)


def split_seed(config: Config) -> int:
    """The seed of the config's data splits: ``data.split_seed``, else the run's ``seed``."""
    return config.seed if config.data.split_seed is None else config.data.split_seed


def prepare_data(config: Config, data_dir: str | Path | None, progress=None) -> PreparedData:
    """Load the config's data set, limit it, split off validation, fit normalization.

    Every split and limit derives from :func:`split_seed`; the run's own randomness
    (initialization, order, augmentation) from ``config.seed``."""
    root = data_root(data_dir)
    seed = split_seed(config)
    loaded = load_dataset(
        config.dataset, root, image_size=config.data.image_size, seed=seed, progress=progress
    )
    train_full, test = loaded.train, loaded.test
    key = fr.fold_in(fr.key(seed), 1)
    k_limit_train, k_limit_test, k_split = fr.split(key, 3)
    train_full = _limit(train_full, config.data.limit_train, k_limit_train)
    test = _limit(test, config.data.limit_test, k_limit_test)
    train, val = train_val_split(train_full, config.data.val_fraction, k_split)
    return PreparedData(train, val, test, fit_normalization(train.images), loaded.notes)


def class_weights(config: Config, train: Dataset) -> np.ndarray | None:
    """The loss weight of each class: none, inverse frequency (``balanced``, mean weight 1
    over the classes), its square root (``sqrt``), or the config's own numbers."""
    cw = config.data.class_weights
    if cw == "none":
        return None
    if cw in ("balanced", "sqrt"):
        counts = train.class_counts().astype(np.float64)
        inverse = np.where(counts > 0, counts.sum() / (len(counts) * np.maximum(counts, 1)), 0.0)
        return (inverse if cw == "balanced" else np.sqrt(inverse)).astype(np.float32)
    if len(cw) != train.num_classes:
        raise ValueError(
            f"data.class_weights has {len(cw)} values but {config.dataset} has "
            f"{train.num_classes} classes"
        )
    return np.asarray(cw, np.float32)

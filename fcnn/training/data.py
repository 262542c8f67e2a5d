"""The data of a training run: load, limit, split off validation, fit normalization.

The config's data settings are read once, here at the edge (:func:`prepare_data`), into a
:class:`fcnn.data.Request` and plain arguments; the loaders and :func:`prepare` below never
see the config.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np

from fcnn import random as fr
from fcnn.data import DataError, Request, load_dataset
from fcnn.data.dataset import Dataset, train_val_split
from fcnn.data.paths import data_root
from fcnn.data.transforms import Normalization, fit_normalization
from fcnn.training.config import Config

__all__ = [
    "PreparedData",
    "class_weights",
    "data_request",
    "prepare",
    "prepare_data",
    "split_seed",
]


@attrs.frozen(eq=False)
class PreparedData:
    """The splits a run trains, validates and tests on, the normalization fitted on the
    training split (or the config's own), the loader's notes and the data root it read."""

    train: Dataset
    val: Dataset
    test: Dataset
    normalization: Normalization
    notes: tuple[str, ...] = ()  # rows the loader skipped, and why
    root: Path | None = None  # the data root it was read under


def _limit(data: Dataset, limit: int | None, key: fr.Key) -> Dataset:
    if limit is None or limit >= len(data):
        return data
    keep = np.sort(fr.generator(key).permutation(len(data))[:limit])
    return data.subset(keep)


def split_seed(config: Config) -> int:
    """The seed of the config's data splits: ``data.split_seed``, else the run's ``seed``."""
    return config.seed if config.data.split_seed is None else config.data.split_seed


def data_request(
    config: Config, data_dir: str | Path | None, *, stored_root=None, progress=None
) -> Request:
    """The config's data settings as a loader's :class:`Request`; the data root from
    ``data_dir``, ``FCNN_DATA`` or ``stored_root`` (the one a trained model's run used)."""
    own = config.data.root or config.data.path
    return Request(
        root=data_root(data_dir, fallback=stored_root),
        path=Path(own) if own is not None else None,
        image_size=config.data.image_size,
        channels=config.data.channels,
        seed=split_seed(config),
        test_fraction=config.data.test_fraction,
        progress=progress,
    )


def prepare(
    dataset: str,
    request: Request,
    *,
    val_fraction: float,
    limit_train: int | None = None,
    limit_test: int | None = None,
    normalization: Normalization | None = None,
) -> PreparedData:
    """Load ``dataset``, limit it, split off validation, fit normalization (unless given).

    Every split and limit derives from ``request.seed``. DataError when too few examples are
    left for a training and a validation split."""
    loaded = load_dataset(dataset, request)
    train_full, test = loaded.train, loaded.test
    key = fr.fold_in(fr.key(request.seed), 1)
    k_limit_train, k_limit_test, k_split = fr.split(key, 3)
    train_full = _limit(train_full, limit_train, k_limit_train)
    test = _limit(test, limit_test, k_limit_test)
    train, val = train_val_split(train_full, val_fraction, k_split)
    if len(train) == 0 or len(val) == 0 or len(test) == 0:
        raise DataError(
            f"{dataset}: {len(train_full)} training and {len(test)} test examples are too few "
            f"to split into training ({len(train)}), validation ({len(val)}, data.val_fraction "
            f"{val_fraction}) and test ({len(test)}) sets: use more examples (data.limit_train, "
            "data.limit_test) or a larger data.val_fraction"
        )
    norm = normalization or fit_normalization(train.images)
    if len(norm.mean) != train.image_shape[0]:
        raise DataError(
            f"data.normalization gives {len(norm.mean)} channels, the images have "
            f"{train.image_shape[0]}"
        )
    return PreparedData(train, val, test, norm, loaded.notes, request.root)


def prepare_data(
    config: Config, data_dir: str | Path | None, progress=None, *, stored_root=None
) -> PreparedData:
    """:func:`prepare` with the config's settings (the run's own randomness, initialization,
    order and augmentation, comes from ``config.seed``; the splits from :func:`split_seed`)."""
    fixed = config.data.normalization
    return prepare(
        config.dataset,
        data_request(config, data_dir, stored_root=stored_root, progress=progress),
        val_fraction=config.data.val_fraction,
        limit_train=config.data.limit_train,
        limit_test=config.data.limit_test,
        normalization=None if fixed is None else Normalization(fixed.mean, fixed.std),
    )


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

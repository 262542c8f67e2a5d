"""An in-memory labelled image set, and the seeded train/validation split."""

from __future__ import annotations

import attrs
import numpy as np

from fcnn import random as fr

__all__ = ["Dataset", "train_val_split"]


@attrs.frozen(eq=False)
class Dataset:
    """``images`` (N, C, H, W) uint8, ``labels`` (N,) int64, and the names of the classes."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]

    def __attrs_post_init__(self) -> None:
        if self.images.ndim != 4 or self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"a Dataset needs images (N, C, H, W) and labels (N,), got {self.images.shape} "
                f"and {self.labels.shape}"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def subset(self, indices: np.ndarray) -> Dataset:
        return Dataset(self.images[indices], self.labels[indices], self.class_names)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.num_classes)


def train_val_split(data: Dataset, fraction: float, key: fr.Key) -> tuple[Dataset, Dataset]:
    """A seeded, class-stratified split: about ``fraction`` of each class goes to validation."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must lie in (0, 1), got {fraction}")
    rng = fr.generator(key)
    val_idx = []
    for c in range(data.num_classes):
        members = np.flatnonzero(data.labels == c)
        rng.shuffle(members)
        val_idx.append(members[: round(fraction * members.size)])
    val = np.sort(np.concatenate(val_idx)) if val_idx else np.zeros(0, np.int64)
    train = np.setdiff1d(np.arange(len(data)), val, assume_unique=True)
    return data.subset(train), data.subset(val)

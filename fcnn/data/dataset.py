"""An in-memory labelled image set, and the seeded train/validation split."""

from __future__ import annotations

import attrs
import numpy as np

from fcnn import random as fr

__all__ = ["Dataset", "split_off_test", "train_val_split"]


@attrs.frozen(eq=False)
class Dataset:
    """``images`` (N, C, H, W) uint8, ``labels`` (N,) int64, and the names of the classes.

    ``groups`` (N,) ints, when given, tie examples together (HAM10000: images of one
    lesion): splits never separate a group. ``meta`` holds per-example columns
    (sex, age, body site...) that follow every subset.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    groups: np.ndarray | None = None
    meta: dict[str, np.ndarray] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        n = self.images.shape[0] if self.images.ndim == 4 else -1
        if n < 0 or self.labels.shape != (n,):
            raise ValueError(
                f"a Dataset needs images (N, C, H, W) and labels (N,), got {self.images.shape} "
                f"and {self.labels.shape}"
            )
        for name, column in [("groups", self.groups), *self.meta.items()]:
            if column is not None and len(column) != n:
                raise ValueError(f"Dataset column {name} has {len(column)} rows for {n} images")

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
        return Dataset(
            self.images[indices],
            self.labels[indices],
            self.class_names,
            None if self.groups is None else self.groups[indices],
            {k: v[indices] for k, v in self.meta.items()},
        )

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.num_classes)


def split_indices(
    labels: np.ndarray,
    groups: np.ndarray | None,
    fractions: tuple[float, ...],
    key: fr.Key,
    num_classes: int | None = None,
) -> list[np.ndarray]:
    """Seeded, class-stratified, group-respecting split of ``range(len(labels))``.

    Each group (an example alone when ``groups`` is None) goes whole to one part; within
    each class (of a group's first example) the groups are shuffled and dealt out by
    ``fractions``, so every part gets about its share of every class. Returns sorted
    index arrays, one per fraction.
    """
    if not fractions or min(fractions) <= 0 or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"split fractions must be positive and sum to 1, got {fractions}")
    n = labels.shape[0]
    group_ids = np.arange(n) if groups is None else np.asarray(groups)
    unique, first, inverse = np.unique(group_ids, return_index=True, return_inverse=True)
    group_labels = labels[first]
    rng = fr.generator(key)
    k = int(labels.max()) + 1 if num_classes is None else num_classes
    part_of_group = np.empty(unique.shape[0], dtype=np.int64)
    bounds = np.cumsum(fractions)[:-1]
    for c in range(k):
        members = np.flatnonzero(group_labels == c)
        rng.shuffle(members)
        cuts = np.round(bounds * members.size).astype(np.int64)
        for part, chunk in enumerate(np.split(members, cuts)):
            part_of_group[chunk] = part
    part_of_example = part_of_group[inverse]
    return [np.flatnonzero(part_of_example == p) for p in range(len(fractions))]


def train_val_split(data: Dataset, fraction: float, key: fr.Key) -> tuple[Dataset, Dataset]:
    """A seeded, class-stratified split: about ``fraction`` of each class goes to validation
    (whole groups, when the data set has them)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must lie in (0, 1), got {fraction}")
    val, train = split_indices(
        data.labels, data.groups, (fraction, 1.0 - fraction), key, data.num_classes
    )
    return data.subset(train), data.subset(val)


def split_off_test(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """``(train, test)``: a seeded, class-stratified (and group-respecting) test split for a
    data set that comes without one; ``fraction`` of each class goes to test."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the test fraction must lie in (0, 1), got {fraction}")
    key = fr.fold_in(fr.key(seed), 7)
    test, train = split_indices(
        data.labels, data.groups, (fraction, 1.0 - fraction), key, data.num_classes
    )
    return data.subset(train), data.subset(test)

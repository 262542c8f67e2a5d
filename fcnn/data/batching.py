"""Mini-batches as index arrays: shuffled or class-balanced, from an explicit key."""

from __future__ import annotations

import numpy as np

from fcnn import random as fr

__all__ = ["balanced_order", "batch_slices", "shuffled_order"]


def shuffled_order(n: int, key: fr.Key | None) -> np.ndarray:
    """``0..n-1`` permuted by ``key`` (in order when ``key`` is None)."""
    return np.arange(n) if key is None else fr.generator(key).permutation(n)


def balanced_order(labels: np.ndarray, key: fr.Key, num_classes: int | None = None) -> np.ndarray:
    """``len(labels)`` indices drawn with replacement so every class is equally likely."""
    k = int(labels.max()) + 1 if num_classes is None else num_classes
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    present = counts > 0
    weights = np.where(present, 1.0 / np.maximum(counts, 1), 0.0)[labels]
    weights /= weights.sum()
    return fr.generator(key).choice(labels.shape[0], size=labels.shape[0], p=weights)


def batch_slices(order: np.ndarray, batch_size: int, drop_last: bool = False) -> list[np.ndarray]:
    """``order`` cut into consecutive batches of ``batch_size`` (the last may be smaller)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    stop = len(order) - (len(order) % batch_size if drop_last else 0)
    return [order[i : min(i + batch_size, stop)] for i in range(0, stop, batch_size)]

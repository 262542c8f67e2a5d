"""Class labels: integer labels to one-hot rows and back."""

from __future__ import annotations

import numpy as np

__all__ = ["check_labels", "one_hot"]


def check_labels(labels: np.ndarray, num_classes: int, name: str = "labels") -> np.ndarray:
    """``labels`` as a 1-D int array of values in ``[0, num_classes)``, else ``ValueError``."""
    arr = np.asarray(labels)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"{name} must be a 1-D integer array, got dtype={arr.dtype} shape={arr.shape}"
        )
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(
            f"{name} must lie in [0, {num_classes}), got values from {arr.min()} to {arr.max()}"
        )
    return arr


def one_hot(labels: np.ndarray, num_classes: int, dtype=np.float32) -> np.ndarray:
    """Rows of a ``(N, num_classes)`` identity picked by ``labels`` (N,)."""
    arr = check_labels(labels, num_classes)
    out = np.zeros((arr.shape[0], num_classes), dtype=dtype)
    out[np.arange(arr.shape[0]), arr] = 1
    return out

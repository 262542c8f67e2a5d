"""Class labels: the check every loss and metric applies to integer labels."""

from __future__ import annotations

import numpy as np

__all__ = ["check_labels"]


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

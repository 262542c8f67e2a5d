"""Mean squared error over every element: ``L = mean((pred − target)²)``,
``∂L/∂pred = 2 (pred − target) / size``."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["MSECache", "backward", "forward"]


class MSECache(NamedTuple):
    diff: np.ndarray  # pred - target


def forward(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, MSECache]:
    """The loss as a 0-d array of ``pred``'s dtype, and the cache."""
    if np.shape(pred) != np.shape(target):
        raise ValueError(f"mse: pred shape {np.shape(pred)} differs from target {np.shape(target)}")
    diff = pred - np.asarray(target, dtype=pred.dtype)
    return np.asarray(np.mean(diff * diff), dtype=pred.dtype), MSECache(diff)


def backward(cache: MSECache, dloss: float = 1.0) -> np.ndarray:
    """Gradient of ``dloss * L`` w.r.t. ``pred``."""
    return cache.diff * cache.diff.dtype.type(2.0 * dloss / cache.diff.size)

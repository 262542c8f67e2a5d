"""Test-time augmentation: a network's logits averaged over simple transforms of each image.

Levels, as airbench's ``tta_level``:

- ``0``: the image alone;
- ``1``: the mean of the image's logits and its mirror's (left–right);
- ``2``: half of level 1, plus a quarter each of level 1 on the image moved by one pixel
  up-left and down-right (mirrored borders): six forward passes an image.

Averaging *logits* (not probabilities) is airbench's choice; on CIFAR-10 it is worth about
half a point of accuracy. Only eval-mode inference uses it, and only where a config asks
(``evaluate.tta``): it multiplies the cost of a prediction by 2 or 6.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["LEVELS", "with_tta"]

LEVELS = (0, 1, 2)

Run = Callable[[np.ndarray], np.ndarray]


def with_tta(run: Run, level: int) -> Run:
    """``run`` (normalized images (N, C, H, W) -> logits (N, K)) averaged over the level's
    transforms of its input (see the module docstring)."""
    if level not in LEVELS:
        raise ValueError(f"test-time augmentation level must be one of {LEVELS}, got {level!r}")
    if level == 0:
        return run

    def mirrored(x: np.ndarray) -> np.ndarray:
        flipped = np.ascontiguousarray(x[:, :, :, ::-1])  # (N, C, H, W), columns reversed
        return 0.5 * (run(x) + run(flipped))

    if level == 1:
        return mirrored

    def translated(x: np.ndarray) -> np.ndarray:
        h, w = x.shape[2], x.shape[3]
        padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")  # (N, C, H+2, W+2)
        up_left = np.ascontiguousarray(padded[:, :, :h, :w])  # content moved down-right by one
        down_right = np.ascontiguousarray(padded[:, :, 2:, 2:])  # moved up-left by one
        return 0.5 * mirrored(x) + 0.25 * (mirrored(up_left) + mirrored(down_right))

    return translated

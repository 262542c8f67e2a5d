"""Normalization and augmentation as pure functions of explicit keys.

Images enter as uint8 (N, C, H, W); :func:`normalize` turns them into float32
with per-channel statistics. Augmentations take float (N, C, H, W) batches and
a key and return new arrays; the same key gives the same result.
"""

from __future__ import annotations

import attrs
import numpy as np

from fcnn import random as fr

__all__ = ["Augmentation", "Normalization", "augment", "fit_normalization", "normalize"]


@attrs.frozen(eq=False)
class Normalization:
    """Per-channel ``mean`` and ``std`` in the 0..255 pixel scale."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> Normalization:
        return cls(tuple(float(v) for v in d["mean"]), tuple(float(v) for v in d["std"]))


def fit_normalization(images: np.ndarray, max_images: int = 10_000) -> Normalization:
    """Per-channel mean and std of (up to ``max_images`` evenly spaced) uint8 images."""
    step = max(1, images.shape[0] // max_images)
    sample = images[::step].astype(np.float64)
    mean = sample.mean(axis=(0, 2, 3))
    std = sample.std(axis=(0, 2, 3))
    return Normalization(tuple(mean.tolist()), tuple(np.maximum(std, 1e-3).tolist()))


def normalize(images: np.ndarray, norm: Normalization) -> np.ndarray:
    """``(images - mean) / std`` per channel, as float32 (N, C, H, W)."""
    c = images.shape[1]
    if len(norm.mean) != c:
        raise ValueError(f"normalization has {len(norm.mean)} channels, images have {c}")
    mean = np.asarray(norm.mean, np.float32).reshape(1, c, 1, 1)
    inv_std = (1.0 / np.asarray(norm.std, np.float32)).reshape(1, c, 1, 1)
    return (images.astype(np.float32) - mean) * inv_std


@attrs.frozen
class Augmentation:
    """Which random transforms to apply in training (all off by default).

    ``crop_padding``: pad by this many zeros, then crop back at a random offset
    (a random shift); ``hflip`` / ``vflip``: flip half the images; ``rot90``:
    rotate by a random multiple of 90° (square images); ``brightness`` /
    ``contrast``: add a shift in ``±brightness`` std units and scale by
    ``1 ± contrast`` per image.
    """

    crop_padding: int = 0
    hflip: bool = False
    vflip: bool = False
    rot90: bool = False
    brightness: float = 0.0
    contrast: float = 0.0

    @property
    def active(self) -> bool:
        return bool(
            self.crop_padding
            or self.hflip
            or self.vflip
            or self.rot90
            or self.brightness
            or self.contrast
        )


def _random_crop(
    x: np.ndarray, pad: int, rng: np.random.Generator, rows: slice, batch: int
) -> np.ndarray:
    """Pad by ``pad`` zeros and cut each image back to (H, W) at its own random offset (the
    offsets drawn for the whole batch, ``x`` its images ``rows``)."""
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    bn, bc, bh, bw = padded.strides
    # (N, C, 2p+1, 2p+1, H, W): every possible crop of every image, a read-only view
    crops = np.lib.stride_tricks.as_strided(
        padded, (n, c, 2 * pad + 1, 2 * pad + 1, h, w), (bn, bc, bh, bw, bh, bw), writeable=False
    )
    tops = rng.integers(0, 2 * pad + 1, batch)[rows]
    lefts = rng.integers(0, 2 * pad + 1, batch)[rows]
    return crops[np.arange(n), :, tops, lefts]  # (N, C, H, W): one crop per image


def augment(
    x: np.ndarray,
    aug: Augmentation,
    key: fr.Key,
    *,
    rows: slice | None = None,
    batch: int | None = None,
) -> np.ndarray:
    """A randomly transformed copy of the float batch ``x`` (N, C, H, W).

    With ``rows`` and ``batch``, ``x`` holds the images ``rows`` of a batch of ``batch``
    images (a data-parallel replica's shard): the random draws are the whole batch's, so
    each image is transformed exactly as ``augment`` of the whole batch would transform it.
    """
    if not aug.active:
        return x
    rng = fr.generator(key)
    rows = slice(None) if rows is None else rows
    batch = x.shape[0] if batch is None else batch
    if len(range(batch)[rows]) != x.shape[0]:
        raise ValueError(f"augment: rows {rows} of {batch} images do not match {x.shape[0]}")
    out = x
    if aug.crop_padding:
        out = _random_crop(out, aug.crop_padding, rng, rows, batch)
    if aug.hflip:
        flip = (rng.random(batch) < 0.5)[rows]
        out = np.where(flip[:, None, None, None], out[:, :, :, ::-1], out)
    if aug.vflip:
        flip = (rng.random(batch) < 0.5)[rows]
        out = np.where(flip[:, None, None, None], out[:, :, ::-1, :], out)
    if aug.rot90:
        if out.shape[2] != out.shape[3]:
            raise ValueError(f"rot90 augmentation needs square images, got {out.shape[2:]}")
        turns = rng.integers(0, 4, batch)[rows]
        out = np.stack([np.rot90(img, k, axes=(1, 2)) for img, k in zip(out, turns, strict=True)])
    if aug.brightness or aug.contrast:
        scale = 1.0 + rng.uniform(-aug.contrast, aug.contrast, (batch, 1, 1, 1))[rows]
        shift = rng.uniform(-aug.brightness, aug.brightness, (batch, 1, 1, 1))[rows]
        out = out * scale.astype(x.dtype) + shift.astype(x.dtype)
    return np.ascontiguousarray(out, dtype=x.dtype)

"""Normalization and augmentation as pure functions of explicit keys.

Images enter as uint8 (N, C, H, W); :func:`normalize` turns them into float32
with per-channel statistics. Augmentations take float (N, C, H, W) batches and
a key and return new arrays; the same key gives the same result.
"""

from __future__ import annotations

import attrs
import numpy as np

from fcnn import random as fr

__all__ = [
    "Augmentation",
    "Normalization",
    "alternating_flips",
    "augment",
    "fit_normalization",
    "normalize",
]


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

    ``crop_padding``: pad by this many zeros (mirrored pixels with ``crop_reflect``), then
    crop back at a random offset (a random shift); ``hflip`` / ``vflip``: flip half the
    images; ``alternating_flip``: mirror each image on every other epoch, starting from a
    random half (airbench's: every image is seen both ways in any two epochs, which random
    flips only reach on average; the flips come from :func:`alternating_flips`); ``rot90``:
    rotate by a random multiple of 90° (square images); ``brightness`` /
    ``contrast``: add a shift in ``±brightness`` std units and scale by
    ``1 ± contrast`` per image; ``rotate``, ``scale``, ``shift``: an affine warp per image,
    turned by up to ``±rotate`` degrees, zoomed by ``1 ± scale`` and moved by up to
    ``±shift`` of the image size, sampled bilinearly with mirrored borders (for images whose
    content has no up or edge, such as dermoscopy); ``color``: add a shift in ``±color`` std
    units to each channel of each image on its own (a colour cast, as another camera or
    light gives).
    """

    crop_padding: int = 0
    crop_reflect: bool = False
    hflip: bool = False
    alternating_flip: bool = False
    vflip: bool = False
    rot90: bool = False
    brightness: float = 0.0
    contrast: float = 0.0
    rotate: float = 0.0
    scale: float = 0.0
    shift: float = 0.0
    color: float = 0.0

    @property
    def warps(self) -> bool:
        return bool(self.rotate or self.scale or self.shift)

    @property
    def active(self) -> bool:
        return bool(
            self.crop_padding
            or self.hflip
            or self.alternating_flip
            or self.vflip
            or self.rot90
            or self.brightness
            or self.contrast
            or self.warps
            or self.color
        )


def _random_crop(
    x: np.ndarray, pad: int, rng: np.random.Generator, rows: slice, batch: int, reflect: bool
) -> np.ndarray:
    """Pad by ``pad`` zeros (or mirrored pixels) and cut each image back to (H, W) at its own
    random offset (the offsets drawn for the whole batch, ``x`` its images ``rows``)."""
    n, c, h, w = x.shape
    widths = ((0, 0), (0, 0), (pad, pad), (pad, pad))
    padded = np.pad(x, widths, mode="reflect") if reflect else np.pad(x, widths)
    bn, bc, bh, bw = padded.strides
    # (N, C, 2p+1, 2p+1, H, W): every possible crop of every image, a read-only view
    crops = np.lib.stride_tricks.as_strided(
        padded, (n, c, 2 * pad + 1, 2 * pad + 1, h, w), (bn, bc, bh, bw, bh, bw), writeable=False
    )
    tops = rng.integers(0, 2 * pad + 1, batch)[rows]
    lefts = rng.integers(0, 2 * pad + 1, batch)[rows]
    return crops[np.arange(n), :, tops, lefts]  # (N, C, H, W): one crop per image


def _mirror(coord: np.ndarray, size: int) -> np.ndarray:
    """Pixel coordinates folded back into [0, size - 1] as a mirror would (…, 1, 0, 1, …)."""
    if size == 1:
        return np.zeros_like(coord)
    period = 2 * (size - 1)
    folded = np.mod(coord, period)
    return np.where(folded > size - 1, period - folded, folded)


def _random_affine(
    x: np.ndarray, aug: Augmentation, rng: np.random.Generator, rows: slice, batch: int
) -> np.ndarray:
    """Each image of ``x`` (N, C, H, W) turned, zoomed and moved by its own random amounts
    (drawn for the whole batch), sampled bilinearly with mirrored borders."""
    n, c, h, w = x.shape
    angles = np.deg2rad(rng.uniform(-aug.rotate, aug.rotate, batch))[rows]  # (N,)
    zooms = 1.0 + rng.uniform(-aug.scale, aug.scale, batch)[rows]  # (N,)
    moves = rng.uniform(-aug.shift, aug.shift, (batch, 2))[rows] * (h, w)  # (N, 2): rows, cols
    # an output pixel p samples the input at centre + R(-angle) (p - centre) / zoom - move
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    # float32 coordinates: a sub-pixel position needs far fewer than 24 bits at image sizes
    yy, xx = np.meshgrid(
        np.arange(h, dtype=np.float32) - cy, np.arange(w, dtype=np.float32) - cx, indexing="ij"
    )  # (H, W) each
    cos = (np.cos(angles) / zooms).astype(np.float32)[:, None, None]  # (N, 1, 1)
    sin = (np.sin(angles) / zooms).astype(np.float32)[:, None, None]
    move_y = (cy - moves[:, 0]).astype(np.float32)[:, None, None]  # (N, 1, 1)
    move_x = (cx - moves[:, 1]).astype(np.float32)[:, None, None]
    src_y = _mirror(cos * yy - sin * xx + move_y, h)  # (N, H, W)
    src_x = _mirror(sin * yy + cos * xx + move_x, w)
    y0 = np.minimum(np.floor(src_y).astype(np.intp), h - 2 if h > 1 else 0)
    x0 = np.minimum(np.floor(src_x).astype(np.intp), w - 2 if w > 1 else 0)
    fy = (src_y - y0).astype(x.dtype)[:, None]  # (N, 1, H, W): weight of the next row
    fx = (src_x - x0).astype(x.dtype)[:, None]
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    flat = x.ravel()  # (N*C*H*W,): np.take on flat indices gathers faster than along an axis
    planes = (np.arange(n * c) * (h * w)).reshape(n, c, 1, 1)  # (N, C, 1, 1): plane offsets

    def at(yi: np.ndarray, xi: np.ndarray) -> np.ndarray:
        return np.take(flat, planes + (yi * w + xi)[:, None])  # (N, C, H, W)

    top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx
    bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx
    return top * (1 - fy) + bottom * fy


def alternating_flips(key: fr.Key, num_images: int, indices: np.ndarray, epoch: int) -> np.ndarray:
    """Whether each image ``indices`` of a data set of ``num_images`` is mirrored in
    ``epoch``: a random half (drawn once from ``key``) in even epochs, the other half in odd
    ones. (N,) bool."""
    first = fr.generator(key).random(num_images) < 0.5  # (num_images,): epoch 0's flips
    return first[np.asarray(indices)] ^ bool(epoch % 2)


def augment(
    x: np.ndarray,
    aug: Augmentation,
    key: fr.Key,
    *,
    rows: slice | None = None,
    batch: int | None = None,
    flips: np.ndarray | None = None,
) -> np.ndarray:
    """A randomly transformed copy of the float batch ``x`` (N, C, H, W).

    With ``rows`` and ``batch``, ``x`` holds the images ``rows`` of a batch of ``batch``
    images (a data-parallel replica's shard): the random draws are the whole batch's, so
    each image is transformed exactly as ``augment`` of the whole batch would transform it.
    ``flips`` (the whole batch's, (batch,) bool) says which images ``alternating_flip``
    mirrors (:func:`alternating_flips`).
    """
    if not aug.active:
        return x
    rng = fr.generator(key)
    rows = slice(None) if rows is None else rows
    batch = int(x.shape[0] if batch is None else batch)
    if len(range(batch)[rows]) != x.shape[0]:
        raise ValueError(f"augment: rows {rows} of {batch} images do not match {x.shape[0]}")
    out = x
    if aug.crop_padding:
        out = _random_crop(out, aug.crop_padding, rng, rows, batch, aug.crop_reflect)
    if aug.alternating_flip:
        if flips is None or len(flips) != batch:
            raise ValueError(
                "alternating_flip needs each image's flip for the whole batch: "
                "fcnn.data.transforms.alternating_flips(key, len(data), indices, epoch)"
            )
        mirrored = np.asarray(flips, bool)[rows]
        out = np.where(mirrored[:, None, None, None], out[:, :, :, ::-1], out)
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
    # drawn after the transforms above, so configs without them keep their random draws
    if aug.warps:
        out = _random_affine(out, aug, rng, rows, batch)
    if aug.color:
        cast = rng.uniform(-aug.color, aug.color, (batch, x.shape[1], 1, 1))[rows]
        out = out + cast.astype(x.dtype)
    return np.ascontiguousarray(out, dtype=x.dtype)

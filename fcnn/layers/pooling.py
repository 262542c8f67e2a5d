"""Max, average and global-average pooling over NCHW input.

Max pooling routes the gradient of each window to its *first* maximum in
row-major order (the rule PyTorch uses), so ties never split or duplicate a
gradient. Average pooling counts padded zeros in the window size
(``count_include_pad=True``). Both take ``window``, ``stride`` (default: the
window) and ``padding`` as static hyperparameters.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

import attrs
import numpy as np

from fcnn import random as fr
from fcnn.im2col import Geometry, geometry, pad2d, pair, pair_of, scatter_windows, window_view
from fcnn.layers.base import composable_module
from fcnn.tree import static_field

__all__ = [
    "AvgCache",
    "AvgPool2D",
    "AvgPool2DParams",
    "GlobalAvgCache",
    "GlobalAvgPool2D",
    "GlobalAvgPool2DParams",
    "MaxPool2D",
    "MaxPool2DParams",
    "PoolCache",
    "TiledMaxCache",
    "WindowMaxCache",
    "backward",
    "forward",
    "image_chunks",
    "init",
    "is_tiled",
    "pool_geometry",
    "route_to_first_maxima",
    "tile_maxima",
]


def _stride(value: int | tuple[int, int] | None) -> tuple[int, int] | None:
    return None if value is None else pair(value, "stride")


@attrs.frozen(eq=False)
class _Windows:
    """No trainable leaves; the window geometry, as ``(rows, cols)`` pairs (an int is taken
    for both); the stride defaults to the window."""

    window: tuple[int, int] = static_field(default=2, converter=pair_of("window"))
    stride: tuple[int, int] = static_field(default=None, converter=_stride)
    padding: tuple[int, int] = static_field(default=0, converter=pair_of("padding"))

    def __attrs_post_init__(self) -> None:
        if self.stride is None:
            object.__setattr__(self, "stride", self.window)  # frozen: set once, here


@attrs.frozen(eq=False)
class MaxPool2DParams(_Windows):
    """Max pooling's window geometry (:class:`_Windows`)."""


@attrs.frozen(eq=False)
class AvgPool2DParams(_Windows):
    """Average pooling's window geometry (:class:`_Windows`)."""


@attrs.frozen(eq=False)
class GlobalAvgPool2DParams:
    """No leaves: averages each channel over all of H and W, (N, C, H, W) -> (N, C)."""


class TiledMaxCache(NamedTuple):
    """Max pooling whose windows tile the input: backward finds each window's first maximum
    by comparing the input with the output."""

    input_shape: tuple[int, ...]
    geo: Geometry
    x: np.ndarray  # the input (N, C, H, W)
    y: np.ndarray  # the output (N, C, OH, OW)


class WindowMaxCache(NamedTuple):
    """General max pooling (overlapping or padded windows): the first maximum's index."""

    input_shape: tuple[int, ...]
    geo: Geometry
    argmax: np.ndarray  # (N, C, OH, OW) index of the first maximum within its window


class AvgCache(NamedTuple):
    input_shape: tuple[int, ...]
    geo: Geometry


class GlobalAvgCache(NamedTuple):
    input_shape: tuple[int, ...]


PoolCache = TiledMaxCache | WindowMaxCache | AvgCache | GlobalAvgCache


PoolParams = MaxPool2DParams | AvgPool2DParams | GlobalAvgPool2DParams


def init(
    key: fr.Key,
    input_shape: tuple[int, int, int],
    *,
    kind: type[PoolParams] = MaxPool2DParams,
    **static: Any,
) -> tuple[tuple[int, ...], PoolParams]:
    """``kind`` is the params class (:class:`MaxPool2DParams`, :class:`AvgPool2DParams` or
    :class:`GlobalAvgPool2DParams`, which takes no window), ``static`` its fields; returns
    ``(output_shape, params)``."""
    if len(input_shape) != 3:
        raise ValueError(f"pooling expects an input shape (C, H, W), got {tuple(input_shape)}")
    if kind is GlobalAvgPool2DParams:
        return (input_shape[0],), GlobalAvgPool2DParams(**static)
    if kind not in (MaxPool2DParams, AvgPool2DParams):
        raise ValueError(f"pooling kind must be a pooling params class, got {kind!r}")
    params = kind(**static)
    geo = pool_geometry(params, (1, *input_shape))
    return (input_shape[0], *geo.out_hw), params


def pool_geometry(params: MaxPool2DParams | AvgPool2DParams, shape: tuple[int, ...]) -> Geometry:
    """The windows of a pooling layer over NCHW input of ``shape``; ValueError for input that
    is not 4-dimensional or padding of more than half the window."""
    if len(shape) != 4:
        raise ValueError(f"pooling expects NCHW input of 4 dimensions, got shape {tuple(shape)}")
    for pad, win in zip(params.padding, params.window, strict=True):
        if pad > win // 2:
            raise ValueError(
                f"pooling padding {params.padding} must be at most half the window {params.window}"
            )
    return geometry(shape, params.window, params.stride, params.padding)


def is_tiled(geo: Geometry) -> bool:
    """Windows that tile the input: stride equals the window and there is no padding."""
    return geo.stride == geo.kernel and geo.padding == (0, 0)


def _tiles(x: np.ndarray, geo: Geometry) -> list[np.ndarray]:
    """The KH*KW strided sub-grids of x (row-major offsets), each (N, C, OH, OW), as views."""
    (kh, kw), (oh, ow) = geo.kernel, geo.out_hw
    return [x[:, :, i : oh * kh : kh, j : ow * kw : kw] for i in range(kh) for j in range(kw)]


# Tiled max pooling passes over each chunk of data several times (row maxima, then column
# maxima; backward a comparison and a product per window offset): chunks of images of about
# this many input bytes keep those passes in the CPU cache instead of memory, which pays on
# large maps such as the DermaScan net's 96x96 first block (``python -m benchmarks.kernels``).
CHUNK_BYTES = 2 << 20


def image_chunks(shape: tuple[int, ...], itemsize: int) -> list[slice]:
    """Consecutive slices of the images of an NCHW ``shape``, about :data:`CHUNK_BYTES` each
    (at least one image)."""
    n, per_image = shape[0], int(np.prod(shape[1:])) * itemsize
    step = max(1, CHUNK_BYTES // max(per_image, 1))
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]


def tile_maxima(x: np.ndarray, geo: Geometry, out: np.ndarray) -> None:
    """``out`` (N, C, OH, OW) = the maximum of each tiled window of ``x``: first over the KH
    rows of each window (whole rows, contiguous), then over the KW columns (a single strided
    run through the row maxima), rather than over the KH*KW sub-grids of x, whose runs are
    only OW values long."""
    (kh, kw), (oh, ow) = geo.kernel, geo.out_hw
    windows = x[:, :, : oh * kh, : ow * kw]  # the pixels some window covers
    rows = np.maximum(windows[:, :, 0::kh], windows[:, :, 1::kh]) if kh > 1 else windows
    for i in range(2, kh):
        np.maximum(rows, windows[:, :, i::kh], out=rows)  # rows: (N, C, OH, OW*KW)
    if kw == 1:
        out[...] = rows
        return
    np.maximum(rows[..., 0::kw], rows[..., 1::kw], out=out)
    for j in range(2, kw):
        np.maximum(out, rows[..., j::kw], out=out)


def _max_forward_tiled(x: np.ndarray, geo: Geometry) -> tuple[np.ndarray, PoolCache]:
    """Element-wise maxima over strided sub-grids (:func:`tile_maxima`), chunk by chunk of
    images; no window view and no argmax pass (``python -m benchmarks.kernels`` compares the
    tiled and window paths)."""
    y = np.empty((*x.shape[:2], *geo.out_hw), dtype=x.dtype)
    for part in image_chunks(x.shape, x.itemsize):
        tile_maxima(x[part], geo, y[part])
    return y, TiledMaxCache(x.shape, geo, x, y)


def route_to_first_maxima(
    x: np.ndarray, y: np.ndarray, dy: np.ndarray, geo: Geometry, dx: np.ndarray
) -> None:
    """``dx`` = ``dy`` routed to the first sub-grid (row-major) of ``x`` that holds each
    window's maximum ``y``, zero elsewhere in the windows."""
    unclaimed = np.ones(dy.shape, dtype=bool)  # windows whose maximum is not yet routed
    hit = np.empty(dy.shape, dtype=bool)
    tiles = _tiles(x, geo)
    for k, (tile, dx_tile) in enumerate(zip(tiles, _tiles(dx, geo), strict=True)):
        np.equal(tile, y, out=hit)
        np.logical_and(hit, unclaimed, out=hit)
        np.multiply(dy, hit, out=dx_tile)
        if k < len(tiles) - 1:
            np.logical_xor(unclaimed, hit, out=unclaimed)  # hit is a subset of unclaimed


def _max_backward_tiled(cache: TiledMaxCache, dy: np.ndarray) -> np.ndarray:
    """Route dy to the first sub-grid (row-major) that holds each window's maximum, chunk
    by chunk of images."""
    n, c, h, w = cache.input_shape
    (kh, kw), (oh, ow) = cache.geo.kernel, cache.geo.out_hw
    covered = h == oh * kh and w == ow * kw  # the tiles write every pixel of dx
    dx = (np.empty if covered else np.zeros)(cache.input_shape, dtype=dy.dtype)
    for part in image_chunks(cache.input_shape, cache.x.itemsize):
        route_to_first_maxima(cache.x[part], cache.y[part], dy[part], cache.geo, dx[part])
    return dx


def _max_forward(params: MaxPool2DParams, x: np.ndarray) -> tuple[np.ndarray, PoolCache]:
    geo = pool_geometry(params, x.shape)
    if is_tiled(geo):
        return _max_forward_tiled(x, geo)
    kh, kw = geo.kernel
    fill = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
    view = window_view(pad2d(x, geo.padding, fill), geo)  # (N, C, KH, KW, OH, OW)
    y = view[:, :, 0, 0].copy()
    argmax = np.zeros(y.shape, dtype=np.uint8 if kh * kw < 256 else np.int32)
    for k in range(1, kh * kw):
        candidate = view[:, :, k // kw, k % kw]
        better = candidate > y  # strict: a tie keeps the earlier (row-major first) maximum
        np.copyto(y, candidate, where=better)
        argmax[better] = k
    return y, WindowMaxCache(x.shape, geo, argmax)


def _avg_forward(params: AvgPool2DParams, x: np.ndarray) -> tuple[np.ndarray, PoolCache]:
    geo = pool_geometry(params, x.shape)
    kh, kw = geo.kernel
    view = window_view(pad2d(x, geo.padding), geo)  # (N, C, KH, KW, OH, OW)
    y = view[:, :, 0, 0].copy()
    for k in range(1, kh * kw):
        y += view[:, :, k // kw, k % kw]
    y *= x.dtype.type(1.0 / (kh * kw)) if np.issubdtype(x.dtype, np.floating) else 1
    return y, AvgCache(x.shape, geo)


def _global_avg_forward(
    params: GlobalAvgPool2DParams, x: np.ndarray
) -> tuple[np.ndarray, PoolCache]:
    if x.ndim != 4:
        raise ValueError(f"GlobalAvgPool2D expects NCHW input, got shape {x.shape}")
    return x.mean(axis=(2, 3)), GlobalAvgCache(x.shape)


_FORWARD = {
    MaxPool2DParams: _max_forward,
    AvgPool2DParams: _avg_forward,
    GlobalAvgPool2DParams: _global_avg_forward,
}


def forward(params: PoolParams, x: np.ndarray) -> tuple[np.ndarray, PoolCache]:
    """x (N, C, H, W) -> y (N, C, OH, OW), or (N, C) for global average pooling; the params
    class selects the pooling."""
    pool = _FORWARD.get(type(params))
    if pool is None:
        raise TypeError(f"not a pooling layer's params: {type(params).__name__}")
    return pool(params, x)


def backward(params: PoolParams, cache: PoolCache, dy: np.ndarray) -> tuple[np.ndarray, PoolParams]:
    """Gradient w.r.t. the input; the params' gradient is the (leafless) params themselves."""
    if isinstance(cache, GlobalAvgCache):
        _n, _c, h, w = cache.input_shape
        dx = np.broadcast_to(dy[:, :, None, None] / (h * w), cache.input_shape)
        return np.ascontiguousarray(dx), params
    if isinstance(cache, TiledMaxCache):
        return _max_backward_tiled(cache, dy), params
    if isinstance(cache, WindowMaxCache):
        zero, kw = dy.dtype.type(0), cache.geo.kernel[1]
        dx = scatter_windows(
            lambda i, j: np.where(cache.argmax == i * kw + j, dy, zero),
            cache.input_shape,
            cache.geo,
            dy.dtype,
        )
        return np.ascontiguousarray(dx), params
    kh, kw = cache.geo.kernel  # AvgCache
    share = dy / (kh * kw)
    dx = scatter_windows(lambda i, j: share, cache.input_shape, cache.geo, dy.dtype)
    return np.ascontiguousarray(dx), params


_MODULE = sys.modules[__name__]
MaxPool2D = composable_module(
    "MaxPool2D",
    _MODULE,
    kind=MaxPool2DParams,
    doc="Max pooling (gradient to the first maximum); stride defaults to the window.",
)
AvgPool2D = composable_module(
    "AvgPool2D",
    _MODULE,
    kind=AvgPool2DParams,
    doc="Average pooling; stride defaults to the window.",
)
GlobalAvgPool2D = composable_module(
    "GlobalAvgPool2D",
    _MODULE,
    kind=GlobalAvgPool2DParams,
    doc="Mean over H and W: (N, C, H, W) -> (N, C).",
)

"""2-D convolution (cross-correlation, as in every deep-learning library) over NCHW input.

Weights are ``(C_out, C_in, KH, KW)``, biases ``(C_out,)``. The forward pass is
im2col followed by a GEMM; the backward pass is two GEMMs and col2im. Stride 1 (LeNet's
5×5 layers, every network's first layer) runs them on the grid layout of :mod:`fcnn.grid`,
chunk by chunk of images so that each chunk's patch matrix stays in the CPU cache; its backward
rebuilds the patch matrices from the input instead of keeping them from the forward pass,
and picks the faster of two ways to the input gradient (see :func:`dx_method`). Stride-1
3×3 convolutions with many channels run Winograd F(4×4, 3×3) or F(2×2, 3×3) instead
(:mod:`fcnn.winograd`, chosen by :func:`algorithm` from the shapes alone).
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

import attrs
import numpy as np

from fcnn import initializers, winograd
from fcnn import random as fr
from fcnn.grid import (
    grid,
    grid_col2im,
    grid_gradient_patches,
    grid_im2col,
    grid_rows_to_nchw,
    grid_to_nchw,
    nchw_to_grid,
)
from fcnn.im2col import Geometry, col2im, geometry, im2col, pair, pair_of
from fcnn.layers.base import composable_module
from fcnn.tree import static_field

__all__ = [
    "WINOGRAD",
    "Conv2D",
    "Conv2DCache",
    "Conv2DParams",
    "GridConvCache",
    "StridedConvCache",
    "WinogradConvCache",
    "algorithm",
    "backward",
    "forward",
    "forward_by",
    "init",
]


def _padding(value: int | str | tuple[int, int]) -> str | tuple[int, int]:
    """``"same"`` / ``"valid"`` as given, else a ``(rows, cols)`` pair."""
    return value if isinstance(value, str) else pair(value, "padding")


@attrs.frozen(eq=False)
class Conv2DParams:
    """Trainable ``w`` (C_out, C_in, KH, KW) and ``b`` (C_out,); static geometry."""

    w: np.ndarray
    b: np.ndarray
    stride: tuple[int, int] = static_field(default=1, converter=pair_of("stride"))
    padding: str | tuple[int, int] = static_field(default=0, converter=_padding)
    dilation: tuple[int, int] = static_field(default=1, converter=pair_of("dilation"))


class GridConvCache(NamedTuple):
    """The stride-1 path: the input itself, whose patch matrices backward rebuilds chunk by
    chunk (cheaper than keeping them all), the geometry and the images per chunk."""

    x: np.ndarray  # (N, C_in, H, W)
    geo: Geometry
    chunk: int  # images per chunk (see CHUNK_BYTES)


class StridedConvCache(NamedTuple):
    """Other strides: the input's patch matrix and the input's shape."""

    cols: np.ndarray  # (C_in*KH*KW, N*OH*OW)
    input_shape: tuple[int, int, int, int]
    geo: Geometry


class WinogradConvCache(NamedTuple):
    """The Winograd path: the input tiles of each chunk of images (read-only), as
    :func:`fcnn.winograd.forward` made them."""

    tiles: tuple[np.ndarray, ...]  # (α², tiles, C_in) per chunk
    input_shape: tuple[int, int, int, int]
    geo: Geometry
    variant: winograd.Variant


# algorithm() names of the Winograd variants
WINOGRAD = {"winograd4": winograd.F4, "winograd2": winograd.F2}


Conv2DCache = GridConvCache | StridedConvCache | WinogradConvCache


# The stride-1 path runs im2col, GEMM and col2im on chunks of images whose patch matrix
# has about this many bytes (the L2 cache of one core here), so that it is written and
# read back while it is still in the cache instead of making a round trip to memory;
# whole-batch chunks are slower for every preset convolution (``python -m
# benchmarks.kernels`` measures it and regenerates reports/kernels.md).
CHUNK_BYTES = 2 << 20

# A GEMM does C_out multiply-adds per value of the patch matrix it streams; with fewer
# output channels than this, too few to hide the streaming, the chunk's budget shrinks in
# proportion (smaller chunks keep the thin GEMM's operands in the cache).
FULL_CHUNK_CHANNELS = 32

# OpenBLAS multiplies matrices with M*N*K <= 1e6 by kernels that skip packing, much faster
# for thin shapes such as a first layer's (C_out, C_in*KH*KW) = (6, 25); a chunk is cut to
# stay under that when it can still hold a few images.
SMALL_GEMM = 10**6
MIN_SMALL_CHUNK = 4


def _images_per_chunk(x_shape: tuple[int, ...], geo: Geometry, c_out: int, itemsize: int) -> int:
    """Images per chunk of the stride-1 path: the patch matrix within :data:`CHUNK_BYTES`
    (scaled down below :data:`FULL_CHUNK_CHANNELS` output channels; at least one image),
    fewer when that keeps every GEMM under :data:`SMALL_GEMM`."""
    rows = x_shape[1] * geo.kernel[0] * geo.kernel[1]
    positions = grid((1, *x_shape[1:]), geo).out_size  # grid positions of one image
    budget = CHUNK_BYTES * min(c_out, FULL_CHUNK_CHANNELS) // FULL_CHUNK_CHANNELS
    chunk = max(1, budget // (rows * positions * itemsize))
    small = SMALL_GEMM // (c_out * rows * positions)
    return min(chunk, small) if small >= MIN_SMALL_CHUNK else chunk


def _chunks(n: int, chunk: int) -> list[slice]:
    """Consecutive slices of ``chunk`` of ``n`` images (the last may be shorter)."""
    return [slice(start, min(start + chunk, n)) for start in range(0, n, chunk)]


def init(
    key: fr.Key,
    input_shape: tuple[int, int, int],
    *,
    out_channels: int,
    kernel_size: int | tuple[int, int],
    w_init: str = "he_normal",
    dtype=np.float32,
    **static: Any,
) -> tuple[tuple[int, int, int], Conv2DParams]:
    """Initialize for one example of shape ``(C_in, H, W)``; returns ``(output_shape, params)``.
    ``static``: the geometry forward needs, :class:`Conv2DParams`' static fields (``stride``,
    ``padding``, ``dilation``)."""
    if len(input_shape) != 3:
        raise ValueError(f"Conv2D expects an input shape (C, H, W), got {tuple(input_shape)}")
    if out_channels < 1:
        raise ValueError(f"Conv2D out_channels must be positive, got {out_channels}")
    c_in = input_shape[0]
    # the static fields first: their converters check the geometry before weights are drawn
    no_weights = np.empty((0,), dtype=dtype)
    static_only = Conv2DParams(w=no_weights, b=no_weights, **static)
    stride, padding, dilation = static_only.stride, static_only.padding, static_only.dilation
    geo = geometry((1, *input_shape), kernel_size, stride, padding, dilation)
    kh, kw = geo.kernel
    fan_in, fan_out = c_in * kh * kw, out_channels * kh * kw
    w = initializers.get(w_init)(key, (out_channels, c_in, kh, kw), fan_in, fan_out, dtype)
    params = attrs.evolve(static_only, w=w, b=np.zeros(out_channels, dtype=dtype))
    return (out_channels, *geo.out_hw), params


def _geometry(params: Conv2DParams, x: np.ndarray) -> Geometry:
    if x.ndim != 4:
        raise ValueError(f"Conv2D expects NCHW input of 4 dimensions, got shape {x.shape}")
    if x.shape[1] != params.w.shape[1]:
        raise ValueError(
            f"Conv2D weight {params.w.shape} expects {params.w.shape[1]} input channels, "
            f"got input of shape {x.shape}"
        )
    return geometry(x.shape, params.w.shape[2:], params.stride, params.padding, params.dilation)


def algorithm(geo: Geometry, c_in: int, c_out: int, images: int) -> str:
    """How a convolution of this geometry and these channels runs over a batch of ``images``,
    from the shapes alone (so a resumed run computes exactly what the uninterrupted one did):

    - ``"winograd4"`` / ``"winograd2"``: stride-1 3×3 kernels with many channels, by
      Winograd F(4×4, 3×3) (4 times fewer multiplications than im2col) or F(2×2, 3×3) (2.25
      times) as :func:`fcnn.winograd.variant` chooses (not for a batch of a few tiles, such
      as one photo);
    - ``"grid"``: other stride-1 convolutions, im2col on the grid layout of :mod:`fcnn.grid`;
    - ``"strided"``: every other stride, im2col and one GEMM.
    """
    v = winograd.variant(geo, c_in, c_out, images)
    if v is not None:
        return next(name for name, known in WINOGRAD.items() if known is v)
    return "grid" if geo.stride == (1, 1) else "strided"


def forward(params: Conv2DParams, x: np.ndarray) -> tuple[np.ndarray, Conv2DCache]:
    """``y[n, o] = sum_c w[o, c] ⋆ x[n, c] + b[o]``; x (N, C_in, H, W) -> y (N, C_out, OH, OW).

    Runs by :func:`algorithm`: Winograd (:func:`fcnn.winograd.forward`), or im2col and a
    GEMM, for stride 1 on the grid layout of :func:`fcnn.grid.grid_im2col` (long contiguous
    copies) one GEMM per chunk of images, for other strides :func:`fcnn.im2col.im2col`.
    """
    geo = _geometry(params, x)
    return forward_by(algorithm(geo, x.shape[1], params.w.shape[0], x.shape[0]), params, x, geo)


def forward_by(
    method: str, params: Conv2DParams, x: np.ndarray, geo: Geometry | None = None
) -> tuple[np.ndarray, Conv2DCache]:
    """:func:`forward` by the given :func:`algorithm` (the benchmarks compare them; the
    Winograd ones need a 3×3 kernel, stride 1 and no dilation, ``"grid"`` stride 1)."""
    geo = geo if geo is not None else _geometry(params, x)
    if method in WINOGRAD:
        v = WINOGRAD[method]
        y, tiles = winograd.forward(x, params.w, params.b, geo.padding, v)
        return y, WinogradConvCache(tiles, x.shape, geo, v)
    if method not in ("grid", "strided"):
        known = ", ".join([*WINOGRAD, "grid", "strided"])
        raise ValueError(f"unknown convolution algorithm {method!r}; choose one of {known}")
    n = x.shape[0]
    c_out = params.w.shape[0]
    oh, ow = geo.out_hw
    w2d = params.w.reshape(c_out, -1)  # (C_out, C_in*KH*KW)
    if method == "grid":
        dtype = np.result_type(x, params.w)
        chunk = _images_per_chunk(x.shape, geo, c_out, dtype.itemsize)
        y = np.empty((n, c_out, oh, ow), dtype=dtype)
        bias_column = params.b.reshape(c_out, 1)
        for part in _chunks(n, chunk):  # k = part.stop - part.start images each
            cols, g = grid_im2col(x[part], geo)  # (C_in*KH*KW, k*OH*Wq)
            y_grid = w2d @ cols  # (C_out, k*OH*Wq), a new array
            y_grid += bias_column  # on the grid's long rows: cheaper than adding it
            # while copying out, whose runs are only OW values long
            y[part] = grid_to_nchw(y_grid, part.stop - part.start, g, geo.out_hw)
        return y, GridConvCache(x, geo, chunk)
    cols = im2col(x, geo)  # (C_in*KH*KW, N*OH*OW)
    y2d = w2d @ cols  # (C_out, N*OH*OW)
    y = y2d.reshape(c_out, n, oh, ow).transpose(1, 0, 2, 3)  # -> (N, C_out, OH, OW) view
    return y + params.b.reshape(1, c_out, 1, 1), StridedConvCache(cols, x.shape, geo)


def backward(
    params: Conv2DParams, cache: Conv2DCache, dy: np.ndarray, *, need_dx: bool = True
) -> tuple[np.ndarray | None, Conv2DParams]:
    """Gradients of ``sum(y * dy)`` w.r.t. the input, ``w`` and ``b``.

    ``need_dx=False`` skips the input gradient (returned as None): a network's first layer
    needs only its weight gradients.
    """
    c_out = params.w.shape[0]
    w2d = params.w.reshape(c_out, -1)  # (C_out, C_in*KH*KW)
    db = np.einsum("nchw->c", dy)
    if isinstance(cache, WinogradConvCache):
        dx, dw = winograd.backward(
            cache.tiles, cache.input_shape, params.w, dy, cache.geo.padding, cache.variant, need_dx
        )
        return dx, attrs.evolve(params, w=dw, b=db)
    if isinstance(cache, GridConvCache):
        dw2d, dx = _grid_backward(w2d, cache, dy, need_dx)
        return dx, attrs.evolve(params, w=dw2d.reshape(params.w.shape), b=db)
    dy2d = dy.transpose(1, 0, 2, 3).reshape(c_out, -1)  # (N, C_out, OH, OW) -> (C_out, N*OH*OW)
    dw = (cache.cols @ dy2d.T).T.reshape(params.w.shape)  # (C_in*KH*KW, C_out) -> w's shape
    if not need_dx:
        return None, attrs.evolve(params, w=dw, b=db)
    dcols = w2d.T @ dy2d  # (C_in*KH*KW, N*OH*OW)
    dx = col2im(dcols, cache.input_shape, cache.geo)
    return dx, attrs.evolve(params, w=dw, b=db)


def _grid_backward(
    w2d: np.ndarray, cache: GridConvCache, dy: np.ndarray, need_dx: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """(dw as (C_out, C_in*KH*KW), dx or None) of the stride-1 path, chunk by chunk: each
    chunk's patch matrix is rebuilt from the input while it fits in the cache."""
    x, geo = cache.x, cache.geo
    dw2d_t = np.zeros(w2d.T.shape, dtype=np.result_type(dy, w2d))  # (C_in*KH*KW, C_out)
    dx = np.empty(x.shape, dtype=dw2d_t.dtype) if need_dx else None
    c_in, c_out = x.shape[1], w2d.shape[0]
    method = dx_method(c_in, c_out) if need_dx else None
    wt = _patch_weights(w2d, c_in) if method == "patches" else None
    for part in _chunks(x.shape[0], cache.chunk):
        k = part.stop - part.start
        cols, g = grid_im2col(x[part], geo)  # (C_in*KH*KW, k*OH*Wq)
        dy_grid = nchw_to_grid(dy[part], g)  # (C_out, k*OH*Wq)
        dw2d_t += cols @ dy_grid.T  # OpenBLAS runs this order faster than dy @ cols.T
        if dx is None:
            continue
        if method == "grid":  # col2im of the patch-matrix gradient
            dx[part] = grid_col2im(w2d.T @ dy_grid, x[part].shape, geo, g)
        elif method == "patches":  # the patch matrix of dy
            patches, gx = grid_gradient_patches(dy[part], x[part].shape, geo)
            assert wt is not None  # made for this method
            dx_grid = wt @ patches  # (C_in, C_out*KH*KW) @ (C_out*KH*KW, k*H*Wq)
            dx[part] = grid_rows_to_nchw(dx_grid, k, gx, geo, x.shape[2:])
    return dw2d_t.T, dx  # (C_in*KH*KW, C_out) -> (C_out, C_in*KH*KW) view


def dx_method(c_in: int, c_out: int) -> str:
    """How the stride-1 input gradient is computed; both give the same result.

    - ``"patches"`` when C_out <= C_in: from the patch matrix of ``dy`` (a copy, then a GEMM
      of C_in rows) rather than by col2im (a GEMM of C_in*KH*KW rows, then KH*KW
      additions): the GEMM is C_in*KH*KW / C_in times smaller. With more output than input
      channels the copy of ``dy``'s patches is the larger, and col2im wins.
    - ``"grid"`` otherwise: col2im of the patch-matrix gradient on the output grid
      (:func:`fcnn.grid.grid_col2im`).

    ``python -m benchmarks.kernels`` times the two ways at the presets' shapes
    (reports/kernels.md); the rule is fixed by the shapes, never by timing at run time, so
    a resumed run computes exactly what the uninterrupted one did.
    """
    return "patches" if c_out <= c_in else "grid"


def _patch_weights(w2d: np.ndarray, c_in: int) -> np.ndarray:
    """The weights (C_out, C_in*KH*KW) as (C_in, C_out*KH*KW), the rows of (C_out, i, j)
    that multiply :func:`fcnn.grid.grid_gradient_patches`."""
    w3d = w2d.reshape(w2d.shape[0], c_in, -1)  # (C_out, C_in*KH*KW) -> (C_out, C_in, KH*KW)
    return w3d.transpose(1, 0, 2).reshape(c_in, -1)  # -> (C_in, C_out*KH*KW) copy


Conv2D = composable_module(
    "Conv2D",
    sys.modules[__name__],
    params_class=Conv2DParams,
    doc="2-D convolution as a composable layer (:func:`init`, :func:`forward`, :func:`backward`).",
)

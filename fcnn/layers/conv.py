"""2-D convolution (cross-correlation, as in every deep-learning library) over NCHW input.

Weights are ``(C_out, C_in, KH, KW)``, biases ``(C_out,)``. The forward pass is
im2col followed by one GEMM; the backward pass is two GEMMs and col2im.
"""

from __future__ import annotations

from typing import NamedTuple

import attrs
import numpy as np

from fcnn import initializers
from fcnn import random as fr
from fcnn.im2col import (
    Geometry,
    Grid,
    col2im,
    geometry,
    grid_col2im,
    grid_im2col,
    grid_to_nchw,
    im2col,
    nchw_to_grid,
    pair,
)
from fcnn.tree import static_field

__all__ = ["Conv2DCache", "Conv2DParams", "backward", "forward", "init"]


@attrs.frozen(eq=False)
class Conv2DParams:
    """Trainable ``w`` (C_out, C_in, KH, KW) and ``b`` (C_out,); static geometry."""

    w: np.ndarray
    b: np.ndarray
    stride: tuple[int, int] = static_field(default=(1, 1))
    padding: int | str | tuple[int, int] = static_field(default=(0, 0))
    dilation: tuple[int, int] = static_field(default=(1, 1))


class Conv2DCache(NamedTuple):
    """What backward needs: the patch matrix of the input and the geometry."""

    cols: np.ndarray  # (C_in*KH*KW, N*OH*OW), or (C_in*KH*KW, L) on the stride-1 grid
    input_shape: tuple[int, int, int, int]
    geo: Geometry
    grid: Grid | None  # set when the stride-1 grid layout was used


def init(
    key: fr.Key,
    input_shape: tuple[int, int, int],
    out_channels: int,
    kernel_size: int | tuple[int, int],
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | str | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    w_init: str = "he_normal",
    dtype=np.float32,
) -> tuple[tuple[int, int, int], Conv2DParams]:
    """Initialize for one example of shape ``(C_in, H, W)``; returns ``(output_shape, params)``."""
    if len(input_shape) != 3:
        raise ValueError(f"Conv2D expects an input shape (C, H, W), got {tuple(input_shape)}")
    if out_channels < 1:
        raise ValueError(f"Conv2D out_channels must be positive, got {out_channels}")
    c_in = input_shape[0]
    geo = geometry((1, *input_shape), kernel_size, stride, padding, dilation)
    kh, kw = geo.kernel
    fan_in, fan_out = c_in * kh * kw, out_channels * kh * kw
    w = initializers.get(w_init)(key, (out_channels, c_in, kh, kw), fan_in, fan_out, dtype)
    params = Conv2DParams(
        w=w,
        b=np.zeros(out_channels, dtype=dtype),
        stride=pair(stride, "stride"),
        padding=padding if isinstance(padding, str) else pair(padding, "padding"),
        dilation=pair(dilation, "dilation"),
    )
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


def forward(params: Conv2DParams, x: np.ndarray) -> tuple[np.ndarray, Conv2DCache]:
    """``y[n, o] = sum_c w[o, c] ⋆ x[n, c] + b[o]``; x (N, C_in, H, W) -> y (N, C_out, OH, OW).

    Stride 1 uses the grid layout of :func:`fcnn.im2col.grid_im2col` (long contiguous
    copies); other strides use :func:`fcnn.im2col.im2col`. Both are one GEMM.
    """
    geo = _geometry(params, x)
    n = x.shape[0]
    c_out = params.w.shape[0]
    oh, ow = geo.out_hw
    w2d = params.w.reshape(c_out, -1)  # (C_out, C_in*KH*KW)
    bias = params.b.reshape(1, c_out, 1, 1)
    if geo.stride == (1, 1):
        cols, g = grid_im2col(x, geo)  # (C_in*KH*KW, L)
        y_grid = np.empty((c_out, g.out_size), dtype=np.result_type(x, params.w))
        np.matmul(w2d, cols, out=y_grid[:, : g.length])  # positions >= L are never valid
        y = grid_to_nchw(y_grid, n, g, geo.out_hw) + bias  # new contiguous (N, C_out, OH, OW)
        return y, Conv2DCache(cols, x.shape, geo, g)
    cols = im2col(x, geo)  # (C_in*KH*KW, N*OH*OW)
    y2d = w2d @ cols  # (C_out, N*OH*OW)
    y = y2d.reshape(c_out, n, oh, ow).transpose(1, 0, 2, 3)  # -> (N, C_out, OH, OW) view
    return y + bias, Conv2DCache(cols, x.shape, geo, None)


def backward(
    params: Conv2DParams, cache: Conv2DCache, dy: np.ndarray, *, need_dx: bool = True
) -> tuple[np.ndarray | None, Conv2DParams]:
    """Gradients of ``sum(y * dy)`` w.r.t. the input, ``w`` and ``b``.

    ``need_dx=False`` skips the input gradient (returned as None): a network's first layer
    needs only its weight gradients.
    """
    c_out = params.w.shape[0]
    w2d = params.w.reshape(c_out, -1)  # (C_out, C_in*KH*KW)
    if cache.grid is not None:
        dy2d = nchw_to_grid(dy, cache.grid)[:, : cache.grid.length]  # (C_out, L)
    else:
        dy2d = dy.transpose(1, 0, 2, 3).reshape(c_out, -1)  # (N, C_out, OH, OW) -> (C_out, N*OH*OW)
    dw = (dy2d @ cache.cols.T).reshape(params.w.shape)  # (C_out, C_in*KH*KW) -> w's shape
    db = np.einsum("nchw->c", dy)
    if not need_dx:
        return None, attrs.evolve(params, w=dw, b=db)
    dcols = w2d.T @ dy2d  # (C_in*KH*KW, L or N*OH*OW)
    if cache.grid is not None:
        dx = grid_col2im(dcols, cache.input_shape, cache.geo, cache.grid)
    else:
        dx = col2im(dcols, cache.input_shape, cache.geo)
    return dx, attrs.evolve(params, w=dw, b=db)

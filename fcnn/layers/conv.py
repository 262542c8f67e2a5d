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
from fcnn.im2col import Geometry, col2im, geometry, im2col, pair
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
    """What backward needs: the im2col matrix of the input and the geometry."""

    cols: np.ndarray  # (C_in*KH*KW, N*OH*OW)
    input_shape: tuple[int, int, int, int]
    geo: Geometry


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
    """``y[n, o] = sum_c w[o, c] ⋆ x[n, c] + b[o]``; x (N, C_in, H, W) -> y (N, C_out, OH, OW)."""
    geo = _geometry(params, x)
    n = x.shape[0]
    c_out = params.w.shape[0]
    oh, ow = geo.out_hw
    cols = im2col(x, geo)  # (C_in*KH*KW, N*OH*OW)
    y2d = params.w.reshape(c_out, -1) @ cols  # (C_out, C_in*KH*KW) @ cols -> (C_out, N*OH*OW)
    y = y2d.reshape(c_out, n, oh, ow).transpose(1, 0, 2, 3)  # -> (N, C_out, OH, OW) view
    y = y + params.b.reshape(1, c_out, 1, 1)  # new contiguous array
    return y, Conv2DCache(cols, x.shape, geo)


def backward(
    params: Conv2DParams, cache: Conv2DCache, dy: np.ndarray
) -> tuple[np.ndarray, Conv2DParams]:
    """Gradients of ``sum(y * dy)`` w.r.t. the input, ``w`` and ``b``."""
    c_out = params.w.shape[0]
    dy2d = dy.transpose(1, 0, 2, 3).reshape(c_out, -1)  # (N, C_out, OH, OW) -> (C_out, N*OH*OW)
    dw = (dy2d @ cache.cols.T).reshape(params.w.shape)  # (C_out, C_in*KH*KW) -> w's shape
    db = dy.sum(axis=(0, 2, 3))
    dcols = params.w.reshape(c_out, -1).T @ dy2d  # (C_in*KH*KW, N*OH*OW)
    dx = col2im(dcols, cache.input_shape, cache.geo)
    return dx, attrs.evolve(params, w=dw, b=db)

"""Sliding windows over NCHW images: padding, window views, im2col and its adjoint col2im.

Geometry conventions used across fcnn:

- ``kernel``, ``stride``, ``dilation`` are ``(rows, cols)`` pairs of positive ints
  (``dilation=1`` means no dilation);
- ``padding`` is an ``(rows, cols)`` pair of non-negative ints of zeros added on
  *both* sides; :func:`resolve_padding` turns the user forms (int, pair,
  ``"valid"``, ``"same"``) into that pair;
- the output side is ``(size + 2*pad - dilation*(kernel-1) - 1) // stride + 1``.

``im2col`` copies the windows into one matrix of shape ``(C*KH*KW, N*OH*OW)`` so
a convolution is a single GEMM; ``col2im`` is its exact adjoint
(``<im2col(x), c> == <x, col2im(c)>``), computed as a loop over the KH*KW kernel
offsets that adds strided slices into a padded buffer (no ``np.add.at``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

__all__ = [
    "Geometry",
    "col2im",
    "geometry",
    "im2col",
    "output_size",
    "pad2d",
    "pair",
    "pair_of",
    "resolve_padding",
    "scatter_windows",
    "window_view",
]


def pair(value: int | tuple[int, int] | list[int], name: str) -> tuple[int, int]:
    """``value`` as an ``(rows, cols)`` pair of ints; ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    ):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def pair_of(name: str) -> Callable[[int | tuple[int, int]], tuple[int, int]]:
    """:func:`pair` for one named hyperparameter, as an attrs converter (whose annotation
    the params class's ``__init__``, and so the layer's constructor, takes over)."""

    def convert(value: int | tuple[int, int]) -> tuple[int, int]:
        return pair(value, name)

    return convert


def resolve_padding(
    padding: int | str | tuple[int, int], kernel: tuple[int, int], dilation: tuple[int, int]
) -> tuple[int, int]:
    """Turn ``padding`` (int, pair, ``"valid"`` or ``"same"``) into a ``(rows, cols)`` pair.

    ``"same"`` pads ``dilation*(k-1)//2`` on each side, which keeps the spatial size
    at stride 1; it needs an odd effective kernel size, since fcnn pads symmetrically.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0
        if padding == "same":
            pads = []
            for k, d, axis in zip(kernel, dilation, ("rows", "cols"), strict=True):
                span = d * (k - 1)
                if span % 2:
                    raise ValueError(
                        f'padding="same" needs an odd kernel size (after dilation); got {k} '
                        f"with dilation {d} along {axis}. Pass an explicit padding instead."
                    )
                pads.append(span // 2)
            return pads[0], pads[1]
        raise ValueError(f'padding must be an int, a pair, "same" or "valid"; got {padding!r}')
    pads = pair(padding, "padding")
    if min(pads) < 0:
        raise ValueError(f"padding must be non-negative, got {padding!r}")
    return pads


def output_size(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    """Number of window positions along one axis."""
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


class Geometry(NamedTuple):
    """The validated geometry of a sliding-window op over an ``(N, C, H, W)`` input."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    out_hw: tuple[int, int]


def geometry(
    input_shape: tuple[int, ...],
    kernel: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | str | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
) -> Geometry:
    """Validate a window geometry against ``input_shape`` (NCHW) and compute the output size.

    Raises ``ValueError`` naming the bad argument and the shapes involved.
    """
    if len(input_shape) != 4:
        raise ValueError(f"expected an NCHW input of 4 dimensions, got shape {tuple(input_shape)}")
    k, s, d = pair(kernel, "kernel_size"), pair(stride, "stride"), pair(dilation, "dilation")
    for name, value in (("kernel_size", k), ("stride", s), ("dilation", d)):
        if min(value) < 1:
            raise ValueError(f"{name} must be positive, got {value}")
    p = resolve_padding(padding, k, d)
    h, w = input_shape[2], input_shape[3]
    out = tuple(
        output_size(size, kk, ss, pp, dd)
        for size, kk, ss, pp, dd in zip((h, w), k, s, p, d, strict=True)
    )
    if min(out) < 1:
        raise ValueError(
            f"kernel {k} (dilation {d}) is larger than the padded input: input shape "
            f"{tuple(input_shape)}, padding {p}"
        )
    return Geometry(k, s, p, d, (out[0], out[1]))


def pad2d(x: np.ndarray, padding: tuple[int, int], value: float = 0.0) -> np.ndarray:
    """``x`` (N, C, H, W) with ``padding`` rows/cols of ``value`` on each side (a new array)."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    out = np.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    out[:, :, ph : ph + h, pw : pw + w] = x
    return out


def window_view(x_padded: np.ndarray, geo: Geometry) -> np.ndarray:
    """Read-only strided view of the windows: shape ``(N, C, KH, KW, OH, OW)``.

    ``view[n, c, i, j, oh, ow] == x_padded[n, c, oh*sh + i*dh, ow*sw + j*dw]``.
    """
    n, c = x_padded.shape[:2]
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = geo.kernel, geo.stride, geo.dilation, geo.out_hw
    bn, bc, bh, bw = x_padded.strides
    return np.lib.stride_tricks.as_strided(
        x_padded,
        shape=(n, c, kh, kw, oh, ow),
        strides=(bn, bc, bh * dh, bw * dw, bh * sh, bw * sw),
        writeable=False,
    )


def im2col(x: np.ndarray, geo: Geometry) -> np.ndarray:
    """The windows of ``x`` (N, C, H, W) as columns: shape ``(C*KH*KW, N*OH*OW)``.

    Row ``(c, i, j)`` (row-major) holds input channel ``c`` at kernel offset ``(i, j)``;
    column ``(n, oh, ow)`` is one output position.
    """
    n, c = x.shape[:2]
    (kh, kw), (oh, ow) = geo.kernel, geo.out_hw
    view = window_view(pad2d(x, geo.padding), geo)  # (N, C, KH, KW, OH, OW)
    cols = view.transpose(1, 2, 3, 0, 4, 5)  # (C, KH, KW, N, OH, OW)
    return cols.reshape(c * kh * kw, n * oh * ow)  # copy into one contiguous GEMM operand


def col2im(cols: np.ndarray, input_shape: tuple[int, ...], geo: Geometry) -> np.ndarray:
    """Adjoint of :func:`im2col`: sum every column entry back into its input pixel.

    ``cols`` has shape ``(C*KH*KW, N*OH*OW)``; the result has ``input_shape`` (N, C, H, W).
    Overlapping windows accumulate, padding is cropped away.
    """
    n, c, h, w = input_shape
    (kh, kw), (oh, ow) = geo.kernel, geo.out_hw
    blocks = cols.reshape(c, kh, kw, n, oh, ow)  # (C*KH*KW, N*OH*OW) -> (C, KH, KW, N, OH, OW)
    summed = scatter_windows(lambda i, j: blocks[:, i, j], (c, n, h, w), geo, cols.dtype)
    return np.ascontiguousarray(summed.transpose(1, 0, 2, 3))  # (C, N, H, W) -> (N, C, H, W)


def scatter_windows(
    values_at: Callable[[int, int], np.ndarray],
    shape: tuple[int, ...],
    geo: Geometry,
    dtype: np.dtype,
) -> np.ndarray:
    """The sum, over the kernel offsets ``(i, j)``, of ``values_at(i, j)`` (``(A, B, OH, OW)``:
    one value per window) added into the pixel that each window holds at that offset: the
    adjoint of reading the windows. The result has ``shape`` (A, B, H, W), padding cropped
    away (a view into the padded buffer); overlapping windows accumulate. A loop over the
    KH*KW offsets, each one strided addition, never ``np.add.at``."""
    a, b, h, w = shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = geo
    buf = np.zeros((a, b, h + 2 * ph, w + 2 * pw), dtype=dtype)
    for i in range(kh):
        r0 = i * dh
        for j in range(kw):
            c0 = j * dw
            buf[:, :, r0 : r0 + sh * (oh - 1) + 1 : sh, c0 : c0 + sw * (ow - 1) + 1 : sw] += (
                values_at(i, j)
            )
    return buf[:, :, ph : ph + h, pw : pw + w]

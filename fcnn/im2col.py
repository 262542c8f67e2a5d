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
    "resolve_padding",
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
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = geo
    blocks = cols.reshape(c, kh, kw, n, oh, ow)  # (C*KH*KW, N*OH*OW) -> (C, KH, KW, N, OH, OW)
    buf = np.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        r0 = i * dh
        for j in range(kw):
            c0 = j * dw
            buf[:, :, r0 : r0 + sh * (oh - 1) + 1 : sh, c0 : c0 + sw * (ow - 1) + 1 : sw] += blocks[
                :, i, j
            ]
    cropped = buf[:, :, ph : ph + h, pw : pw + w]  # (C, N, H, W)
    return np.ascontiguousarray(cropped.transpose(1, 0, 2, 3))  # (C, N, H, W) -> (N, C, H, W)


# ----------------------------------------------------------------------------- stride-1 grid
#
# For stride 1 there is a layout in which every copy moves long contiguous runs. Lay the
# input out channel-major, each channel flattened, image n in a slot of Hq rows of Wq
# values: padded pixel (r, c) of image n at n*Hq*Wq + r*Wq + c, zeros everywhere else.
# Output position (n, oh, ow), ow < Wq, is grid position q = n*OH*Wq + oh*Wq + ow; its
# window at kernel offset (i, j) reads n*Hq*Wq + oh*Wq + ow + i*dh*Wq + j*dw. So row
# (c, i, j) of the patch matrix is, for each image, one contiguous run of OH*Wq values of
# channel c, starting at i*dh*Wq + j*dw. The GEMM computes the output at every grid
# position; the valid ones are those with ow < OW.
#
# Padding is shared: the pw zeros after a row are also the left padding of the next row,
# and the ph zero rows after an image the top padding of the next, so a row holds
# Wq = W + pw values (not W + 2*pw) and a slot Hq = H + ph rows, as long as the window
# span covers the padding (then OH <= Hq and OW <= Wq). "same" and "valid" padding always
# do; otherwise the pitch grows to fit. Only the OH output rows of each image are grid
# positions, so the waste is the Wq - OW columns of each output row: 28*29 positions per
# 28x28 image at 3x3 "same" (OH*OW = 784), 10*14 at 5x5 "valid" on 14x14 (100).


class Grid(NamedTuple):
    """The flattened grid of a stride-1 window op (see the comment above)."""

    pitch: tuple[int, int]  # (Hq, Wq): rows per image slot, values per row
    size: int  # S: values per channel of the input buffer
    out_size: int  # N*OH*Wq: grid positions (valid or not) of the outputs


def grid(input_shape: tuple[int, ...], geo: Geometry) -> Grid:
    """The grid of a stride-1 window op over ``input_shape`` (NCHW) with geometry ``geo``."""
    if geo.stride != (1, 1):
        raise ValueError(f"the grid layout is for stride 1, got stride {geo.stride}")
    n, _, h, w = input_shape
    (kh, kw), (ph, pw), (dh, dw), (oh, ow) = geo.kernel, geo.padding, geo.dilation, geo.out_hw
    hq, wq = max(h + ph, oh), max(w + pw, ow)  # room for every output, zeros after each row
    reach = (kh - 1) * dh * wq + (kw - 1) * dw  # offset of a window's last value
    # every run [i*dh*Wq + j*dw, ... + N*Hq*Wq) lies inside the buffer
    return Grid((hq, wq), n * hq * wq + reach, n * oh * wq)


def _slots(flat: np.ndarray, n: int, g: Grid, start: int = 0) -> np.ndarray:
    """The image slots of a (C, S) grid buffer from offset ``start``, as a view (C, N, Hq*Wq)."""
    hq, wq = g.pitch
    return flat[:, start : start + n * hq * wq].reshape(flat.shape[0], n, hq * wq)


def _pixels(flat: np.ndarray, n: int, g: Grid, geo: Geometry, hw: tuple[int, int]) -> np.ndarray:
    """The image pixels of a (C, S) grid buffer as a view (C, N, H, W)."""
    (hq, wq), (ph, pw), (h, w) = g.pitch, geo.padding, hw
    slots = _slots(flat, n, g).reshape(-1, n, hq, wq)  # (C, N, Hq*Wq) -> (C, N, Hq, Wq)
    return slots[:, :, ph : ph + h, pw : pw + w]


def _runs(
    flat: np.ndarray, start: int, n: int, run: int, g: Grid, geo: Geometry, sign: int
) -> np.ndarray:
    """Read-only view (C, KH, KW, N, run) of a (C, S) grid buffer: ``view[c, i, j, n]`` is
    the run ``flat[c, start + n*Hq*Wq + sign*(i*dh*Wq + j*dw) :][:run]``."""
    (hq, wq), (kh, kw), (dh, dw) = g.pitch, geo.kernel, geo.dilation
    step = flat.strides[1]
    # np.ndarray over the buffer rather than as_strided: the same view (checked against the
    # buffer's bounds) in a third of the time, and this runs for every chunk of every conv
    view = np.ndarray(
        (flat.shape[0], kh, kw, n, run),
        flat.dtype,
        buffer=flat,  # a new, C-contiguous array
        offset=start * step,
        strides=(flat.strides[0], sign * dh * wq * step, sign * dw * step, hq * wq * step, step),
    )
    view.flags.writeable = False
    return view


def grid_im2col(x: np.ndarray, geo: Geometry) -> tuple[np.ndarray, Grid]:
    """Stride-1 patch matrix ``(C*KH*KW, N*OH*Wq)`` over the flattened grid, and the grid."""
    n, c, h, w = x.shape
    g = grid(x.shape, geo)
    (kh, kw), run = geo.kernel, geo.out_hw[0] * g.pitch[1]
    flat = np.zeros((c, g.size), dtype=x.dtype)
    _pixels(flat, n, g, geo, (h, w))[...] = x.transpose(1, 0, 2, 3)  # NCHW -> CNHW on the grid
    runs = _runs(flat, 0, n, run, g, geo, +1)  # (C, KH, KW, N, OH*Wq)
    return runs.reshape(c * kh * kw, g.out_size), g  # copy of contiguous runs of OH*Wq


def grid_gradient_patches(
    dy: np.ndarray, input_shape: tuple[int, ...], geo: Geometry
) -> tuple[np.ndarray, Grid]:
    """Patch matrix ``(K*KH*KW, N*H*Wq)`` of an output gradient ``dy`` (N, K, OH, OW) for
    the input gradient of a stride-1 window op over ``input_shape`` (N, C, H, W).

    The adjoint of the grid correlation is a correlation of the zero-padded ``dy`` with
    the kernel flipped: the gradient at grid position p sums ``dy`` at ``p - i*dh*Wq - j*dw``.
    Row ``(k, i, j)`` holds output channel k at kernel offset (i, j); column ``(n, h, wq)``
    is input row h of image n on the grid. With ``wt`` the weights as ``(C, K*KH*KW)``
    (``w.transpose(1, 0, 2, 3)``), ``wt @ patches`` is the input gradient on the grid
    (:func:`grid_rows_to_nchw` takes the pixels out): the same result as
    :func:`grid_col2im` of ``w2d.T @ nchw_to_grid(dy)``, with a copy in place of its
    additions, and faster when K <= C.
    """
    n, k, oh, ow = dy.shape
    h = input_shape[2]
    g = grid(input_shape, geo)
    (hq, wq), (kh, kw), ph = g.pitch, geo.kernel, geo.padding[0]
    reach = g.size - n * hq * wq  # the largest kernel offset: zeros before the first slot
    flat = np.zeros((k, g.size), dtype=dy.dtype)
    slots = _slots(flat, n, g, reach).reshape(k, n, hq, wq)  # (K, N, Hq*Wq) -> (K, N, Hq, Wq)
    slots[:, :, :oh, :ow] = dy.transpose(1, 0, 2, 3)  # NKHW -> KNHW, output (oh, ow) at slot
    runs = _runs(flat, reach + ph * wq, n, h * wq, g, geo, -1)  # (K, KH, KW, N, H*Wq)
    return runs.reshape(k * kh * kw, n * h * wq), g  # copy of contiguous runs of H*Wq


def grid_rows_to_nchw(
    values: np.ndarray, n: int, g: Grid, geo: Geometry, hw: tuple[int, int]
) -> np.ndarray:
    """(C, N*H*Wq) values at the input rows of the grid -> the pixels as a view (N, C, H, W)."""
    (h, w), wq, pw = hw, g.pitch[1], geo.padding[1]
    rows = values.reshape(values.shape[0], n, h, wq)  # (C, N*H*Wq) -> (C, N, H, Wq)
    return rows[:, :, :, pw : pw + w].transpose(1, 0, 2, 3)  # -> (N, C, H, W) view


def grid_to_nchw(values: np.ndarray, n: int, g: Grid, out_hw: tuple[int, int]) -> np.ndarray:
    """(K, N*OH*Wq) values on the output grid -> the valid positions as a view (N, K, OH, OW)."""
    wq = g.pitch[1]
    oh, ow = out_hw
    on_grid = values.reshape(values.shape[0], n, oh, wq)  # (K, N*OH*Wq) -> (K, N, OH, Wq)
    return on_grid[:, :, :, :ow].transpose(1, 0, 2, 3)  # -> (N, K, OH, OW) view


def _nchw_to_rows(y: np.ndarray, g: Grid, rows: int) -> np.ndarray:
    """(N, K, OH, OW) -> (K, N*rows*Wq): image n's output (oh, ow) at ``n*rows*Wq + oh*Wq +
    ow``, zeros everywhere else (``rows`` >= OH)."""
    n, k, oh, ow = y.shape
    wq = g.pitch[1]
    out = np.zeros((k, n, rows, wq), dtype=y.dtype)
    out[:, :, :oh, :ow] = y.transpose(1, 0, 2, 3)  # (N, K, OH, OW) -> (K, N, OH, OW)
    return out.reshape(k, n * rows * wq)


def nchw_to_grid(y: np.ndarray, g: Grid) -> np.ndarray:
    """(N, K, OH, OW) -> (K, N*OH*Wq) on the output grid, zeros at the invalid positions."""
    return _nchw_to_rows(y, g, y.shape[2])


def nchw_to_slots(y: np.ndarray, g: Grid) -> np.ndarray:
    """(N, K, OH, OW) -> (K, N*Hq*Wq) at the pitch of the input's slots: output (oh, ow) of
    image n at ``n*Hq*Wq + oh*Wq + ow``, zeros everywhere else.

    The patch-matrix gradient ``w2d.T @ nchw_to_slots(dy, g)`` then has, for each kernel
    offset, one contiguous run per input channel that :func:`slot_col2im` adds in one call
    (instead of one run of OH*Wq per image); the GEMM has Hq/OH times the columns.
    """
    return _nchw_to_rows(y, g, g.pitch[0])


def _col2im_rows(
    cols: np.ndarray, input_shape: tuple[int, ...], geo: Geometry, g: Grid, rows: int
) -> np.ndarray:
    """(C*KH*KW, N*rows*Wq) -> (N, C, H, W): the column of image n at ``r*Wq + c`` is the
    window whose first value is padded pixel (r, c); its value at kernel offset (i, j) is
    added ``i*dh*Wq + j*dw`` further on, one addition of runs of ``rows*Wq`` per offset
    (a single contiguous run per channel when ``rows`` is the slot pitch Hq)."""
    n, c, h, w = input_shape
    (kh, kw), (dh, dw), wq = geo.kernel, geo.dilation, g.pitch[1]
    run = rows * wq
    blocks = cols.reshape(c, kh * kw, n, run)  # (C*KH*KW, N*rows*Wq) -> (C, KH*KW, N, rows*Wq)
    flat = np.zeros((c, g.size), dtype=cols.dtype)
    whole = rows == g.pitch[0]  # the runs tile the slots: one run per channel and offset
    for k in range(kh * kw):
        i, j = divmod(k, kw)
        start = i * dh * wq + j * dw
        if whole:  # as a 2-D addition: 0.5x the time of the same one over (C, N, Hq*Wq) views
            flat[:, start : start + n * run] += blocks[:, k].reshape(c, n * run)
        else:
            _slots(flat, n, g, start)[:, :, :run] += blocks[:, k]
    pixels = _pixels(flat, n, g, geo, (h, w))  # (C, N, H, W) view
    return np.ascontiguousarray(pixels.transpose(1, 0, 2, 3))  # (C, N, H, W) -> (N, C, H, W)


def slot_col2im(
    cols: np.ndarray, input_shape: tuple[int, ...], geo: Geometry, g: Grid
) -> np.ndarray:
    """Patch-matrix gradient at slot pitch (C*KH*KW, N*Hq*Wq) -> input gradient (N, C, H, W).

    When the columns outside the OH x OW outputs are zero (as in
    ``w2d.T @ nchw_to_slots(dy, g)``) the result is :func:`grid_col2im` of the same gradient
    at grid pitch, with one contiguous addition per kernel offset.
    """
    return _col2im_rows(cols, input_shape, geo, g, g.pitch[0])


def grid_col2im(
    cols: np.ndarray, input_shape: tuple[int, ...], geo: Geometry, g: Grid
) -> np.ndarray:
    """Adjoint of :func:`grid_im2col`: (C*KH*KW, N*OH*Wq) -> (N, C, H, W)."""
    return _col2im_rows(cols, input_shape, geo, g, geo.out_hw[0])

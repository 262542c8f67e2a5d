"""The stride-1 grid layout of the convolutions: im2col and col2im by long contiguous copies.

For stride 1 there is a layout in which every copy moves long contiguous runs. Lay the
input out channel-major, each channel flattened, image n in a slot of Hq rows of Wq
values: padded pixel (r, c) of image n at n*Hq*Wq + r*Wq + c, zeros everywhere else.
Output position (n, oh, ow), ow < Wq, is grid position q = n*OH*Wq + oh*Wq + ow; its
window at kernel offset (i, j) reads n*Hq*Wq + oh*Wq + ow + i*dh*Wq + j*dw. So row
(c, i, j) of the patch matrix is, for each image, one contiguous run of OH*Wq values of
channel c, starting at i*dh*Wq + j*dw. The GEMM computes the output at every grid
position; the valid ones are those with ow < OW.

Padding is shared: the pw zeros after a row are also the left padding of the next row,
and the ph zero rows after an image the top padding of the next, so a row holds
Wq = W + pw values (not W + 2*pw) and a slot Hq = H + ph rows, as long as the window
span covers the padding (then OH <= Hq and OW <= Wq). "same" and "valid" padding always
do; otherwise the pitch grows to fit. Only the OH output rows of each image are grid
positions, so the waste is the Wq - OW columns of each output row: 28*29 positions per
28x28 image at 3x3 "same" (OH*OW = 784), 10*14 at 5x5 "valid" on 14x14 (100).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fcnn.im2col import Geometry

__all__ = [
    "Grid",
    "grid",
    "grid_col2im",
    "grid_gradient_patches",
    "grid_im2col",
    "grid_rows_to_nchw",
    "grid_to_nchw",
    "nchw_to_grid",
]


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


def _col2im_rows(
    cols: np.ndarray, input_shape: tuple[int, ...], geo: Geometry, g: Grid, rows: int
) -> np.ndarray:
    """(C*KH*KW, N*rows*Wq) -> (N, C, H, W): the column of image n at ``r*Wq + c`` is the
    window whose first value is padded pixel (r, c); its value at kernel offset (i, j) is
    added ``i*dh*Wq + j*dw`` further on, one addition of runs of ``rows*Wq`` per offset
    (a single contiguous run per channel when ``rows`` is the slot pitch Hq, as for a 1x1
    kernel)."""
    n, c, h, w = input_shape
    (kh, kw), (dh, dw), wq = geo.kernel, geo.dilation, g.pitch[1]
    run = rows * wq
    blocks = cols.reshape(c, kh * kw, n, run)  # (C*KH*KW, N*rows*Wq) -> (C, KH*KW, N, rows*Wq)
    flat = np.zeros((c, g.size), dtype=cols.dtype)
    tiles_slots = rows == g.pitch[0]  # the runs tile the slots: one run per channel and offset
    for k in range(kh * kw):
        i, j = divmod(k, kw)
        start = i * dh * wq + j * dw
        if tiles_slots:  # one 2-D addition: cheaper than the same one over (C, N, Hq*Wq) views
            flat[:, start : start + n * run] += blocks[:, k].reshape(c, n * run)
        else:
            _slots(flat, n, g, start)[:, :, :run] += blocks[:, k]
    pixels = _pixels(flat, n, g, geo, (h, w))  # (C, N, H, W) view
    return np.ascontiguousarray(pixels.transpose(1, 0, 2, 3))  # (C, N, H, W) -> (N, C, H, W)


def grid_col2im(
    cols: np.ndarray, input_shape: tuple[int, ...], geo: Geometry, g: Grid
) -> np.ndarray:
    """Adjoint of :func:`grid_im2col`: (C*KH*KW, N*OH*Wq) -> (N, C, H, W)."""
    return _col2im_rows(cols, input_shape, geo, g, geo.out_hw[0])

"""Winograd F(2×2, 3×3): stride-1 3×3 convolutions with 16 multiplications per 2×2 outputs.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016). The
correlation of a 4×4 input tile ``d`` with a 3×3 kernel ``g`` is the 2×2 output tile

    Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A

    Bᵀ = [[1, 0, -1, 0],      G = [[1,  0,  0],      Aᵀ = [[1, 1,  1,  0],
          [0, 1,  1, 0],           [½,  ½,  ½],            [0, 1, -1, -1]]
          [0, -1, 1, 0],           [½, -½,  ½],
          [0, 1,  0, -1]]          [0,  0,  1]]

16 multiplications instead of the 36 of the direct product. Output tile (a, b) covers
outputs (2a..2a+1, 2b..2b+1) and reads padded input rows 2a..2a+3 and columns 2b..2b+3
(neighbouring tiles overlap by two). Summed over input channels, the 16 element-wise
products become 16 GEMMs: ``M[q] = V[q] @ U[q]`` for q = 4ξ + η, where ``V[q]`` (tiles,
C_in) holds ``(Bᵀ d B)[ξ, η]`` of every tile and ``U[q]`` (C_in, C_out) holds
``(G g Gᵀ)[ξ, η]`` of every kernel.

The forward pass is linear in ``d`` and in ``g``, so both gradients reuse it:

- input gradient: the same algorithm on ``dy`` padded by ``2 - p``, with the kernel rotated
  by 180° and its channel axes swapped (the adjoint of a correlation is the correlation
  with the flipped kernel);
- weight gradient: ``dU[q] = V[q]ᵀ @ dM[q]`` over the same input tiles, with
  ``dM = A dY Aᵀ`` of each 2×2 tile of ``dy`` (4×4 values), then ``dg = Gᵀ dU G``.

Tiles are laid out channel-last, ``(tiles, C)``: every transform pass then moves runs of C
contiguous values whatever the image size, where a channel-major layout of an 8×8 map
would move runs of four. The transforms are written out as the additions they are, on
strided views of a padded channel-last copy of the input. Work goes in chunks of images
of at least :data:`MIN_TILES` tiles: each chunk's transformed tiles stay near the cache,
and each of its 16 GEMMs is still wide enough to run at the BLAS's speed.

:func:`applies` is the rule that picks this path; it reads the shapes only, never a timing,
so a resumed run computes exactly what the uninterrupted one did.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fcnn.im2col import Geometry

__all__ = ["MIN_CHANNEL_PRODUCT", "MIN_TILES", "TileGrid", "applies", "backward", "forward"]

_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])

# The transforms cost a fixed number of passes per input and output value while the GEMMs
# they save grow with C_in * C_out: below this product the im2col path is as fast or faster
# (``python -m benchmarks.winograd`` measures both at the presets' shapes).
MIN_CHANNEL_PRODUCT = 64 * 64

MIN_TILES = 256  # tiles per chunk: narrower GEMMs run well below the BLAS's speed

# Channel planes a multiple of 4 KiB apart (32x32 float32 maps, 64x64, ...) make a
# channel-last copy touch every channel at addresses with the same low 12 bits, which the
# CPU's caches and store buffers serve one at a time: two to three times slower than other
# sizes. Such copies go through a buffer whose planes are a few values further apart.
_ALIAS_BYTES = 4096
_PLANE_SKEW = 16  # values added after each plane of the buffer


def _skewed_planes(k: int, c: int, h: int, w: int, dtype: np.dtype) -> np.ndarray:
    """A (k, C, H, W) view into a buffer whose planes are :data:`_PLANE_SKEW` values apart."""
    return np.empty((k, c, h * w + _PLANE_SKEW), dtype)[..., : h * w].reshape(k, c, h, w)


def _aliased(h: int, w: int, dtype: np.dtype) -> bool:
    return (h * w * np.dtype(dtype).itemsize) % _ALIAS_BYTES == 0


def _to_channels_last(x: np.ndarray, out: np.ndarray) -> None:
    """``out`` (k, H, W, C) = ``x`` (k, C, H, W)."""
    if _aliased(*x.shape[2:], x.dtype):
        skewed = _skewed_planes(*x.shape, x.dtype)
        skewed[...] = x  # contiguous runs of whole planes
        x = skewed
    out[...] = x.transpose(0, 2, 3, 1)  # NCHW -> NHWC


def _to_channels_first(x: np.ndarray, out: np.ndarray) -> None:
    """``out`` (k, C, H, W) = ``x`` (k, H, W, C)."""
    k, h, w, c = x.shape
    if not _aliased(h, w, x.dtype):
        out[...] = x.transpose(0, 3, 1, 2)  # NHWC -> NCHW
        return
    skewed = _skewed_planes(k, c, h, w, x.dtype)
    skewed[...] = x.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    out[...] = skewed  # contiguous runs of whole planes


class TileGrid(NamedTuple):
    """The 2×2 output tiles of one image and the zero-padded input they read."""

    tiles: tuple[int, int]  # (TH, TW): tiles per column and per row, ceil(OH/2), ceil(OW/2)
    padded: tuple[int, int]  # (2*TH + 2, 2*TW + 2): rows and columns of the padded input
    padding: tuple[int, int]  # zeros before the first input row and column
    out_hw: tuple[int, int]  # (OH, OW): the valid outputs (odd sizes leave half a tile)


def tile_grid(in_hw: tuple[int, int], padding: tuple[int, int]) -> TileGrid:
    """The tile grid of a stride-1 3×3 correlation of ``in_hw`` images padded by ``padding``."""
    oh, ow = (side + 2 * pad - 2 for side, pad in zip(in_hw, padding, strict=True))
    th, tw = (oh + 1) // 2, (ow + 1) // 2
    return TileGrid((th, tw), (2 * th + 2, 2 * tw + 2), padding, (oh, ow))


def applies(geo: Geometry, c_in: int, c_out: int) -> bool:
    """True when a convolution of this geometry and these channels runs here: 3×3 kernel,
    stride 1, no dilation, padding of at most 2 (the input gradient pads ``dy`` by
    ``2 - p``), and ``C_in * C_out >=`` :data:`MIN_CHANNEL_PRODUCT`."""
    return (
        geo.kernel == (3, 3)
        and geo.stride == (1, 1)
        and geo.dilation == (1, 1)
        and max(geo.padding) <= 2
        and c_in * c_out >= MIN_CHANNEL_PRODUCT
    )


def kernel_transform(w: np.ndarray) -> np.ndarray:
    """``U``: ``G g Gᵀ`` of every kernel of ``w`` (C_out, C_in, 3, 3), as (16, C_in, C_out)."""
    c_out, c_in = w.shape[:2]
    g = _G.astype(w.dtype)
    rows = w.reshape(-1, 3) @ g.T  # (C_out*C_in*3 [i], 3 [j]) -> (.., 4 [η]): g Gᵀ
    rows = rows.reshape(-1, 3, 4).transpose(0, 2, 1)  # -> (C_out*C_in, 4 [η], 3 [i])
    u = rows.reshape(-1, 3) @ g.T  # (C_out*C_in*4 [η], 4 [ξ]): G (g Gᵀ), transposed
    u = u.reshape(c_out, c_in, 4, 4).transpose(3, 2, 1, 0)  # -> (4 [ξ], 4 [η], C_in, C_out)
    return np.ascontiguousarray(u).reshape(16, c_in, c_out)


def kernel_gradient(du: np.ndarray) -> np.ndarray:
    """``dg = Gᵀ dU G``: the gradient of the kernels (C_out, C_in, 3, 3) from that of ``U``
    (16, C_in, C_out) (the adjoint of :func:`kernel_transform`)."""
    _, c_in, c_out = du.shape
    g = _G.astype(du.dtype)
    d = du.reshape(4, 4, c_in, c_out).transpose(3, 2, 0, 1)  # -> (C_out, C_in, 4 [ξ], 4 [η])
    rows = d.reshape(-1, 4) @ g  # (C_out*C_in*4 [ξ], 4 [η]) -> (.., 3 [j]): dU G
    rows = rows.reshape(-1, 4, 3).transpose(0, 2, 1)  # -> (C_out*C_in, 3 [j], 4 [ξ])
    dg = rows.reshape(-1, 4) @ g  # (C_out*C_in*3 [j], 3 [i]): Gᵀ (dU G), transposed
    return np.ascontiguousarray(dg.reshape(c_out, c_in, 3, 3).transpose(0, 1, 3, 2))


def _input_tiles(x: np.ndarray, grid: TileGrid) -> np.ndarray:
    """``V``: ``Bᵀ d B`` of every 4×4 input tile of ``x`` (k, C, H, W), as (16, k*TH*TW, C)."""
    k, c, h, w = x.shape
    (th, tw), (hp, wp), (ph, pw) = grid.tiles, grid.padded, grid.padding
    padded = np.zeros((k, hp, wp, c), x.dtype)
    _to_channels_last(x, padded[:, ph : ph + h, pw : pw + w])  # inside a zero border
    # d B along the rows of every tile: column tap t of tile column b is column 2b + t
    d = [padded[:, :, t : t + 2 * tw : 2] for t in range(4)]  # 4 x (k, Hp, TW, C) views
    s = np.empty((4, k, hp, tw, c), x.dtype)  # (η, k, padded row, tile column, C)
    np.subtract(d[0], d[2], out=s[0])
    np.add(d[1], d[2], out=s[1])
    np.subtract(d[2], d[1], out=s[2])
    np.subtract(d[1], d[3], out=s[3])
    # Bᵀ (d B) along the columns: row tap t of tile row a is padded row 2a + t
    r = [s[:, :, t : t + 2 * th : 2] for t in range(4)]  # 4 x (4 [η], k, TH, TW, C) views
    v = np.empty((4, 4, k, th, tw, c), x.dtype)  # (ξ, η, k, tile row, tile column, C)
    np.subtract(r[0], r[2], out=v[0])
    np.add(r[1], r[2], out=v[1])
    np.subtract(r[2], r[1], out=v[2])
    np.subtract(r[1], r[3], out=v[3])
    return v.reshape(16, k * th * tw, c)


def _gradient_tiles(dy: np.ndarray, grid: TileGrid) -> np.ndarray:
    """``dM = A dY Aᵀ`` of every 2×2 tile of ``dy`` (k, C_out, OH, OW), as (16, k*TH*TW,
    C_out): the gradient of the 16 products of the tiles that produced ``dy``."""
    k, c_out, oh, ow = dy.shape
    th, tw = grid.tiles
    padded = np.zeros((k, 2 * th, 2 * tw, c_out), dy.dtype)  # the half tiles of odd sizes: 0
    _to_channels_last(dy, padded[:, :oh, :ow])
    y0, y1 = padded[:, 0::2], padded[:, 1::2]  # a tile's two rows: (k, TH, 2*TW, C_out) each
    r = np.empty((4, k, th, 2 * tw, c_out), dy.dtype)  # (ξ, ...): A applied to the rows
    r[0] = y0
    np.add(y0, y1, out=r[1])
    np.subtract(y0, y1, out=r[2])
    np.negative(y1, out=r[3])
    c0, c1 = r[:, :, :, 0::2], r[:, :, :, 1::2]  # a tile's two columns: (4, k, TH, TW, C_out)
    dm = np.empty((4, 4, k, th, tw, c_out), dy.dtype)  # (ξ, η, ...): then along the columns
    dm[:, 0] = c0
    np.add(c0, c1, out=dm[:, 1])
    np.subtract(c0, c1, out=dm[:, 2])
    np.negative(c1, out=dm[:, 3])
    return dm.reshape(16, k * th * tw, c_out)


def _output_tiles(m: np.ndarray, k: int, grid: TileGrid) -> np.ndarray:
    """``Aᵀ M A`` of the products ``m`` (16, k*TH*TW, C_out): the outputs channel-last, (k,
    OH, OW, C_out) (a view)."""
    (th, tw), (oh, ow) = grid.tiles, grid.out_hw
    c_out = m.shape[2]
    rows = m.reshape(4, 4, k, th, tw, c_out)  # (ξ, η, k, tile row, tile column, C_out)
    t0 = rows[0] + rows[1]  # Aᵀ along the columns of a tile: (4 [η], k, TH, TW, C_out)
    t0 += rows[2]
    t1 = rows[1] - rows[2]
    t1 -= rows[3]
    out = np.empty((k, 2 * th, 2 * tw, c_out), m.dtype)  # NHWC, whole tiles
    for i, t in enumerate((t0, t1)):  # output row i of each tile, then A along its row
        left, right = out[:, i::2, 0::2], out[:, i::2, 1::2]  # (k, TH, TW, C_out) views
        np.add(t[0], t[1], out=left)
        left += t[2]
        np.subtract(t[1], t[2], out=right)
        right -= t[3]
    return out[:, :oh, :ow]  # the half tiles of odd sizes cropped


def _chunks(n: int, grid: TileGrid) -> list[slice]:
    """Consecutive slices of images with at least :data:`MIN_TILES` tiles each (the last may
    hold fewer)."""
    per_image = grid.tiles[0] * grid.tiles[1]
    step = max(1, -(-MIN_TILES // per_image))
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]


def _correlate(x: np.ndarray, u: np.ndarray, b: np.ndarray | None, grid: TileGrid) -> np.ndarray:
    """The correlation of ``x`` (N, C_in, H, W) with the transformed kernels ``u`` (16, C_in,
    C_out), plus ``b`` (C_out,) or nothing: (N, C_out, OH, OW)."""
    n, c_out = x.shape[0], u.shape[2]
    y = np.empty((n, c_out, *grid.out_hw), dtype=np.result_type(x, u))
    for part in _chunks(n, grid):
        v = _input_tiles(x[part], grid)  # (16, tiles, C_in)
        m = np.empty((16, v.shape[1], c_out), y.dtype)
        for q in range(16):  # one GEMM each: faster than a stacked matmul of thin matrices
            np.matmul(v[q], u[q], out=m[q])  # (tiles, C_in) @ (C_in, C_out)
        if b is not None:  # Aᵀ's column 1 is all ones: product (1, 1) reaches every output
            m[5] += b
        _to_channels_first(_output_tiles(m, part.stop - part.start, grid), y[part])
    return y


def forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, padding: tuple[int, int]) -> np.ndarray:
    """``y[n, o] = sum_c w[o, c] ⋆ x[n, c] + b[o]`` for a stride-1 3×3 kernel ``w`` (C_out,
    C_in, 3, 3) and ``padding`` (rows, cols) of zeros: x (N, C_in, H, W) -> y (N, C_out, OH,
    OW), the same values as :func:`fcnn.layers.conv.forward` up to rounding."""
    grid = tile_grid(x.shape[2:], padding)
    return _correlate(x, kernel_transform(w), b.astype(w.dtype), grid)


def backward(
    x: np.ndarray, w: np.ndarray, dy: np.ndarray, padding: tuple[int, int], need_dx: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    """(dx or None, dw): the gradients of ``sum(forward(x, w, b, padding) * dy)`` w.r.t. the
    input and the kernels. The input tiles are rebuilt from ``x`` chunk by chunk (cheaper
    than keeping them from the forward pass)."""
    grid = tile_grid(x.shape[2:], padding)
    c_in, c_out = x.shape[1], w.shape[0]
    du = np.zeros((16, c_in, c_out), dtype=np.result_type(x, w, dy))
    for part in _chunks(x.shape[0], grid):
        v = _input_tiles(x[part], grid)  # (16, tiles, C_in)
        dm = _gradient_tiles(dy[part], grid)  # (16, tiles, C_out)
        for q in range(16):
            du[q] += v[q].T @ dm[q]  # (C_in, tiles) @ (tiles, C_out)
    dw = kernel_gradient(du)
    if not need_dx:
        return None, dw
    flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # (C_in, C_out, 3, 3)
    back = tile_grid(dy.shape[2:], (2 - padding[0], 2 - padding[1]))
    return _correlate(dy, kernel_transform(flipped), None, back), dw

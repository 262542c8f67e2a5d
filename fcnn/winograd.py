"""Winograd convolutions F(m×m, 3×3): stride-1 3×3 correlations with fewer multiplications.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016). With
α = m + 2, the correlation of an α×α input tile ``d`` with a 3×3 kernel ``g`` is the m×m
output tile

    Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A          (Bᵀ: α×α, G: α×3, Aᵀ: m×α)

α² multiplications instead of 9·m². Two variants (:data:`F2`, :data:`F4`):

    F(2×2, 3×3), 16 for 4 outputs:           F(4×4, 3×3), 36 for 16 outputs:
    Bᵀ = [[1, 0, -1, 0],                     Bᵀ = [[4,  0, -5,  0, 1, 0],
          [0, 1,  1, 0],                           [0, -4, -4,  1, 1, 0],
          [0, -1, 1, 0],                           [0,  4, -4, -1, 1, 0],
          [0, 1,  0, -1]]                          [0, -2, -1,  2, 1, 0],
    G  = [[1, 0, 0], [½, ½, ½],                    [0,  2, -1, -2, 1, 0],
          [½, -½, ½], [0, 0, 1]]                   [0,  4,  0, -5, 0, 1]]
    Aᵀ = [[1, 1, 1, 0],                      G  = [[¼, 0, 0], [-⅙, -⅙, -⅙], [-⅙, ⅙, -⅙],
          [0, 1, -1, -1]]                          [1/24, 1/12, ⅙], [1/24, -1/12, ⅙], [0, 0, 1]]
                                             Aᵀ = [[1, 1,  1, 1,  1, 0],
                                                   [0, 1, -1, 2, -2, 0],
                                                   [0, 1,  1, 4,  4, 0],
                                                   [0, 1, -1, 8, -8, 1]]

Output tile (a, b) covers outputs (m·a.., m·b..) and reads the α×α padded input at
(m·a, m·b): neighbouring tiles overlap by two. Summed over input channels, the α²
element-wise products become α² GEMMs ``M[q] = V[q] @ U[q]``, q = α·ξ + η, where ``V[q]``
(tiles, C_in) holds ``(Bᵀ d B)[ξ, η]`` of every tile and ``U[q]`` (C_in, C_out) holds
``(G g Gᵀ)[ξ, η]`` of every kernel. Column 1 of both Aᵀ is all ones, so the bias, added to
product (1, 1), reaches every output.

Backward goes through the same products: ``dM = A dY Aᵀ`` of each m×m tile of ``dy`` is the
gradient of the products, so

- weight gradient: ``dU[q] = V[q]ᵀ @ dM[q]`` over the same input tiles, then
  ``dg = Gᵀ dU G``;
- input gradient: ``dV[q] = dM[q] @ U[q]ᵀ``, then ``B dV Bᵀ`` of every tile added back
  where the tile was read from (the adjoint of the input transform; tiles overlap, so
  their sums meet). That reuses ``dM``, where running the algorithm on ``dy`` with the
  rotated kernel would transform ``dy``'s C_out channels once more.

Tiles are laid out channel-last, ``(tiles, C)``: every copy and transform then moves runs of
C contiguous values whatever the image size, where a channel-major layout of an 8×8 map
would move runs of four. Each transform is the small matrix applied on both sides of all
tiles at once: two GEMMs over the gathered tiles (``_both_sides``). Work goes in chunks of
images of at least :data:`MIN_TILES` tiles, so that each of the α² GEMMs is still wide
enough to run at the BLAS's speed (fewer where the chunk's data would outgrow the caches:
:data:`CHUNK_BYTES`); a batch of fewer than :data:`MIN_BATCH_TILES` tiles (one photo) stays
on im2col. The forward pass keeps each chunk's input tiles for the backward pass (about 2.25
times the input's size for F(4×4), 4 times for F(2×2)), which would otherwise transform the
input again.

F(4×4) does 2.25 times fewer multiplications than F(2×2) and moves fewer values per
output, but its constants (up to 8 and 1/24) cost precision: in float32 it is about 1e-5 of
the output's scale from the exact result, F(2×2) and im2col under 1e-6
(``reports/winograd.md``). :func:`variant` chooses from the shapes alone, never from a
timing, so a resumed run computes exactly what the uninterrupted one did.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fcnn.im2col import Geometry

__all__ = [
    "CHUNK_BYTES",
    "F2",
    "F4",
    "MIN_BATCH_TILES",
    "MIN_CHANNEL_PRODUCT",
    "MIN_TILES",
    "TileGrid",
    "Variant",
    "backward",
    "forward",
    "variant",
]


class Variant(NamedTuple):
    """One Winograd algorithm F(m×m, 3×3): its name and its three matrices."""

    name: str
    bt: np.ndarray  # (α, α): Bᵀ, input tiles
    g: np.ndarray  # (α, 3): G, kernels
    at: np.ndarray  # (m, α): Aᵀ, products to outputs

    @property
    def m(self) -> int:  # output tile side
        return self.at.shape[0]

    @property
    def alpha(self) -> int:  # input tile side, m + 2
        return self.bt.shape[0]


F2 = Variant(
    "F(2x2,3x3)",
    np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float),
    np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]),
    np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float),
)
F4 = Variant(
    "F(4x4,3x3)",
    np.array(
        [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ],
        dtype=float,
    ),
    np.array(
        [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ]
    ),
    np.array(
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
        dtype=float,
    ),
)
_BIAS_COLUMN = 1  # Aᵀ[:, 1] is all ones in both variants

# The transforms cost a fixed number of passes per input and output value while the GEMMs
# they save grow with C_in * C_out. Every 3x3 layer of the presets from 32 -> 32 channels up
# gains (``python -m benchmarks.winograd`` measures them); the first layers, with 1 or 3
# input channels, would run GEMMs with K = 1 or 3 after the same transforms: im2col keeps
# them.
MIN_CHANNEL_PRODUCT = 32 * 32

# F(4x4) pads each side up to a multiple of 4 outputs; past this share of computed outputs
# over valid ones (14x14 maps compute 16x16: 1.31) the padding costs more than F(4x4) saves.
F4_MAX_WASTE = 1.15

MIN_TILES = 256  # tiles per chunk: narrower GEMMs run well below the BLAS's speed
# A batch needs this many tiles for Winograd, the fewest a chunk is cut to (below): one
# photo's tiles (64 at 32x32, the shipped DermaScan model's widest Winograd layer) make GEMMs
# too thin to repay the transforms, while 32 images of 8x8 maps (128 tiles: the DermaScan
# net's last layer at 64x64 on each of two processes) gain as much as larger batches do
# (``python -m benchmarks.winograd``).
MIN_BATCH_TILES = MIN_TILES // 2

# A chunk's input tiles and products (α² values per tile and channel, in and out) are read
# and written by every transform and GEMM of the chunk: past about this size they no longer
# stay in the CPU's caches between those passes, and a chunk of MIN_TILES tiles that would
# hold more (many channels: the DermaScan net's 64 -> 128 layers and up) is cut down to
# MIN_BATCH_TILES (``python -m benchmarks.winograd`` measures both ways).
CHUNK_BYTES = 3 << 20

# Channel planes a multiple of 4 KiB apart (32x32 float32 maps, 64x64, ...) make a
# channel-last copy touch every channel at addresses with the same low 12 bits, which the
# CPU's caches and store buffers serve one at a time: two to three times slower than other
# sizes. Such copies go through a buffer whose planes are a few values further apart.
_ALIAS_BYTES = 4096
_PLANE_SKEW = 16  # values added after each plane of the buffer


class TileGrid(NamedTuple):
    """The m×m output tiles of one image and the zero-padded input they read."""

    tiles: tuple[int, int]  # (TH, TW): tiles per column and per row, ceil(OH/m), ceil(OW/m)
    padded: tuple[int, int]  # (m*TH + 2, m*TW + 2): rows and columns of the padded input
    padding: tuple[int, int]  # zeros before the first input row and column
    out_hw: tuple[int, int]  # (OH, OW): the valid outputs (the last tiles may stick out)


def tile_grid(in_hw: tuple[int, int], padding: tuple[int, int], m: int) -> TileGrid:
    """The m×m tiles of a stride-1 3×3 correlation of ``in_hw`` images padded by ``padding``."""
    oh, ow = (side + 2 * pad - 2 for side, pad in zip(in_hw, padding, strict=True))
    th, tw = -(-oh // m), -(-ow // m)
    return TileGrid((th, tw), (m * th + 2, m * tw + 2), padding, (oh, ow))


def variant(geo: Geometry, c_in: int, c_out: int, images: int) -> Variant | None:
    """The Winograd variant for a convolution of this geometry and these channels over a
    batch of ``images``, or None (im2col): a 3×3 kernel, stride 1, no dilation,
    ``C_in * C_out >=`` :data:`MIN_CHANNEL_PRODUCT` and a batch of at least
    :data:`MIN_BATCH_TILES` tiles (a single photo's tiles make GEMMs too thin to repay the
    transforms); then :data:`F4` unless its tiles would stick out past
    :data:`F4_MAX_WASTE`, else :data:`F2`."""
    if not (
        geo.kernel == (3, 3)
        and geo.stride == (1, 1)
        and geo.dilation == (1, 1)
        and c_in * c_out >= MIN_CHANNEL_PRODUCT
    ):
        return None
    v = F4 if _waste(geo.out_hw, F4.m) <= F4_MAX_WASTE else F2
    tiles = _tiles_covering(geo.out_hw, v.m)
    return v if images * tiles >= MIN_BATCH_TILES else None


def _tiles_covering(out_hw: tuple[int, int], m: int) -> int:
    """Tiles of side ``m`` that cover ``out_hw`` outputs (the last ones may stick out)."""
    return -(-out_hw[0] // m) * -(-out_hw[1] // m)


def _waste(out_hw: tuple[int, int], m: int) -> float:
    """Outputs computed over outputs wanted, for tiles of side ``m``."""
    return _tiles_covering(out_hw, m) * m * m / (out_hw[0] * out_hw[1])


def _kernel_matrix(v: Variant, dtype: np.dtype) -> np.ndarray:
    """``G ⊗ G`` (α², 9): row α·ξ + η maps a kernel's 9 values (row-major) to ``(G g Gᵀ)[ξ,
    η]``, so that both sides of the transform are one product with a 9-value inner side."""
    return np.kron(v.g, v.g).astype(dtype)


def kernel_transform(w: np.ndarray, v: Variant) -> np.ndarray:
    """``U``: ``G g Gᵀ`` of every kernel of ``w`` (C_out, C_in, 3, 3), as (α², C_in, C_out).

    One product per input channel, written straight into U's layout: applying G on each
    side in turn would multiply matrices with 3 columns and reorder U twice, which cost
    several times more than the GEMMs it feeds (``python -m benchmarks.winograd``)."""
    c_out, c_in = w.shape[:2]
    taps = np.ascontiguousarray(w.reshape(c_out, c_in * 9).T)  # (C_out, C_in*9) -> (C_in*9, C_out)
    taps = taps.reshape(c_in, 9, c_out)
    u = np.empty((v.alpha**2, c_in, c_out), w.dtype)
    # (α², 9) @ (C_in [batch], 9, C_out) into U viewed as (C_in, α², C_out)
    np.matmul(_kernel_matrix(v, w.dtype), taps, out=u.transpose(1, 0, 2))
    return u


def kernel_gradient(du: np.ndarray, v: Variant) -> np.ndarray:
    """``dg = Gᵀ dU G``: the gradient of the kernels (C_out, C_in, 3, 3) from that of ``U``
    (α², C_in, C_out) (the adjoint of :func:`kernel_transform`: ``(G ⊗ G)ᵀ`` per input
    channel)."""
    _, c_in, c_out = du.shape
    dg = np.empty((c_out, c_in, 9), du.dtype)
    # (C_in [batch], C_out, α²) @ (α², 9) into dg viewed as (C_in, C_out, 9)
    np.matmul(du.transpose(1, 2, 0), _kernel_matrix(v, du.dtype), out=dg.transpose(1, 0, 2))
    return dg.reshape(c_out, c_in, 3, 3)  # (C_out, C_in, 9) -> (C_out, C_in, 3, 3)


def _skewed_planes(k: int, c: int, h: int, w: int, dtype: np.dtype) -> np.ndarray:
    """A (k, C, H, W) view into a buffer whose planes are :data:`_PLANE_SKEW` values apart."""
    return np.empty((k, c, h * w + _PLANE_SKEW), dtype)[..., : h * w].reshape(k, c, h, w)


def _aliased(h: int, w: int, dtype: np.dtype) -> bool:
    return (h * w * np.dtype(dtype).itemsize) % _ALIAS_BYTES == 0


def _to_channels_last(x: np.ndarray, out: np.ndarray) -> None:
    """``out`` (k, H, W, C) = ``x`` (k, C, H, W)."""
    k, c, h, w = x.shape
    if _aliased(h, w, x.dtype):
        skewed = _skewed_planes(k, c, h, w, x.dtype)
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


def _gather(padded: np.ndarray, side: int, m: int, tiles: tuple[int, int]) -> np.ndarray:
    """The ``side``×``side`` tiles at stride ``m`` of a channel-last ``padded`` (k, rows, cols,
    C), as (side, side, k, TH, TW, C): value (i, j) of every tile in one contiguous block."""
    k, c = padded.shape[0], padded.shape[3]
    (th, tw), dtype = tiles, padded.dtype
    out = np.empty((side, side, k, th, tw, c), dtype)
    for i in range(side):
        for j in range(side):
            out[i, j] = padded[:, i : i + m * th : m, j : j + m * tw : m]  # (k, TH, TW, C)
    return out


def _both_sides(mat: np.ndarray, tiles: np.ndarray) -> np.ndarray:
    """``mat @ t @ matᵀ`` for every tile ``t`` of ``tiles`` (s, s, ...): (r, r, ...)."""
    s, r = tiles.shape[0], mat.shape[0]
    rest = tiles.shape[2:]
    left = mat @ tiles.reshape(s, -1)  # (r, s*rest): mat applied along the tiles' rows
    both = np.matmul(mat, left.reshape(r, s, -1))  # (r, r, rest): and along their columns
    return both.reshape(r, r, *rest)


def _bordered(
    k: int,
    size: tuple[int, int],
    start: tuple[int, int],
    inner: tuple[int, int],
    c: int,
    dtype: np.dtype,
) -> np.ndarray:
    """An uninitialized channel-last buffer (k, rows, cols, C) of ``size`` whose border
    around the ``inner`` rows and columns at ``start`` is zero: the caller fills the inside,
    so zeroing all of it would write every value twice."""
    (rows, cols), (top, left), (h, w) = size, start, inner
    out = np.empty((k, rows, cols, c), dtype)
    out[:, :top] = 0
    out[:, top + h :] = 0
    out[:, top : top + h, :left] = 0
    out[:, top : top + h, left + w :] = 0
    return out


def _input_tiles(x: np.ndarray, grid: TileGrid, v: Variant) -> np.ndarray:
    """``V``: ``Bᵀ d B`` of every α×α input tile of ``x`` (k, C, H, W), as (α², tiles, C)."""
    k, c, h, w = x.shape
    (hp, wp), (ph, pw) = grid.padded, grid.padding
    padded = _bordered(k, (hp, wp), (ph, pw), (h, w), c, x.dtype)
    _to_channels_last(x, padded[:, ph : ph + h, pw : pw + w])  # inside the zero border
    tiles = _gather(padded, v.alpha, v.m, grid.tiles)  # (α, α, k, TH, TW, C)
    return _both_sides(v.bt.astype(x.dtype), tiles).reshape(v.alpha**2, -1, c)


def _input_tiles_adjoint(d_tiles: np.ndarray, grid: TileGrid, v: Variant, out: np.ndarray) -> None:
    """``out`` (k, C, H, W) = the adjoint of :func:`_input_tiles` applied to ``d_tiles`` (α²,
    k*TH*TW, C): ``B dV Bᵀ`` of every tile, added back where the tile was read from."""
    k, _, h, w = out.shape
    c = d_tiles.shape[2]
    (th, tw), (hp, wp), (ph, pw), m = grid.tiles, grid.padded, grid.padding, v.m
    tiles = d_tiles.reshape(v.alpha, v.alpha, k, th, tw, c)
    d = _both_sides(v.bt.T.astype(d_tiles.dtype), tiles)  # (α, α, k, TH, TW, C)
    padded = np.zeros((k, hp, wp, c), d_tiles.dtype)
    for i in range(v.alpha):
        for j in range(v.alpha):
            padded[:, i : i + m * th : m, j : j + m * tw : m] += d[i, j]  # tiles overlap
    _to_channels_first(padded[:, ph : ph + h, pw : pw + w], out)


def _gradient_tiles(dy: np.ndarray, grid: TileGrid, v: Variant) -> np.ndarray:
    """``dM = A dY Aᵀ`` of every m×m tile of ``dy`` (k, C_out, OH, OW), as (α², tiles, C_out):
    the gradient of the α² products of the tiles that produced ``dy``."""
    k, c_out, oh, ow = dy.shape
    (th, tw), m = grid.tiles, v.m
    padded = _bordered(k, (m * th, m * tw), (0, 0), (oh, ow), c_out, dy.dtype)
    _to_channels_last(dy, padded[:, :oh, :ow])  # outputs past the edge: 0
    tiles = _gather(padded, m, m, grid.tiles)  # (m, m, k, TH, TW, C_out)
    return _both_sides(v.at.T.astype(dy.dtype), tiles).reshape(v.alpha**2, -1, c_out)


def _output_tiles(products: np.ndarray, grid: TileGrid, v: Variant) -> np.ndarray:
    """``Aᵀ M A`` of the ``products`` (α², k*TH*TW, C_out): the outputs channel-last, (k, OH,
    OW, C_out) (a view)."""
    (th, tw), (oh, ow), m = grid.tiles, grid.out_hw, v.m
    c_out, k = products.shape[2], products.shape[1] // (th * tw)
    tiles = products.reshape(v.alpha, v.alpha, k, th, tw, c_out)
    y = _both_sides(v.at.astype(products.dtype), tiles)  # (m [i], m [j], k, TH, TW, C_out)
    out = np.empty((k, th, m, tw, m, c_out), products.dtype)
    out[...] = y.transpose(2, 3, 0, 4, 1, 5)  # output (m*a + i, m*b + j) of image n
    return out.reshape(k, m * th, m * tw, c_out)[:, :oh, :ow]  # the outputs past the edge cut


def _chunks(n: int, grid: TileGrid, v: Variant, channels: int, itemsize: int) -> list[slice]:
    """Consecutive slices of images with at least :data:`MIN_TILES` tiles each, or at least
    :data:`MIN_BATCH_TILES` where a chunk of :data:`MIN_TILES` tiles would hold more than
    :data:`CHUNK_BYTES` of tiles and products (``channels`` = C_in + C_out); the last slice
    may hold fewer."""
    per_image = grid.tiles[0] * grid.tiles[1]
    step = max(1, -(-MIN_TILES // per_image))
    image_bytes = per_image * v.alpha**2 * channels * itemsize
    if step * image_bytes > CHUNK_BYTES:
        fewest = max(1, -(-MIN_BATCH_TILES // per_image))
        step = max(fewest, min(step, CHUNK_BYTES // image_bytes))
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]


def _kept_chunks(tiles: tuple[np.ndarray, ...], grid: TileGrid) -> list[slice]:
    """The slices of images whose input ``tiles`` (α², images·TH·TW, C_in) forward kept."""
    per_image, start, parts = grid.tiles[0] * grid.tiles[1], 0, []
    for chunk_tiles in tiles:
        images = chunk_tiles.shape[1] // per_image
        parts.append(slice(start, start + images))
        start += images
    return parts


def forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, padding: tuple[int, int], v: Variant
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """``y[n, o] = sum_c w[o, c] ⋆ x[n, c] + b[o]`` for a stride-1 3×3 kernel ``w`` (C_out,
    C_in, 3, 3) and ``padding`` (rows, cols) of zeros: x (N, C_in, H, W) -> y (N, C_out, OH,
    OW), the same values as :func:`fcnn.layers.conv.forward` up to rounding; and the input
    tiles ``V`` of each chunk of images ((α², tiles, C_in) each, read-only), which
    :func:`backward` takes rather than transforming the input again."""
    grid = tile_grid(x.shape[2:], padding, v.m)
    u = kernel_transform(w, v)  # (α², C_in, C_out)
    n, c_out = x.shape[0], u.shape[2]
    y = np.empty((n, c_out, *grid.out_hw), dtype=np.result_type(x, u))
    bias_product = _BIAS_COLUMN * v.alpha + _BIAS_COLUMN
    kept = []
    for part in _chunks(n, grid, v, x.shape[1] + c_out, y.itemsize):
        tiles = _input_tiles(x[part], grid, v)  # (α², tiles, C_in)
        tiles.flags.writeable = False  # kept for backward: a cache never changes
        kept.append(tiles)
        products = np.empty((len(u), tiles.shape[1], c_out), y.dtype)
        # α² GEMMs (tiles, C_in) @ (C_in, C_out) in one stacked call: NumPy hands each to the
        # BLAS without a Python loop, as fast or faster than one call per GEMM
        # (``python -m benchmarks.winograd``)
        np.matmul(tiles, u, out=products)
        products[bias_product] += b.astype(y.dtype)
        _to_channels_first(_output_tiles(products, grid, v), y[part])
    return y, tuple(kept)


def backward(
    tiles: tuple[np.ndarray, ...],
    input_shape: tuple[int, ...],
    w: np.ndarray,
    dy: np.ndarray,
    padding: tuple[int, int],
    v: Variant,
    need_dx: bool = True,
) -> tuple[np.ndarray | None, np.ndarray]:
    """(dx or None, dw): the gradients of ``sum(forward(x, w, b, padding, v)[0] * dy)``
    w.r.t. the input (of ``input_shape``) and the kernels, from the input ``tiles`` that
    :func:`forward` returned."""
    grid = tile_grid((input_shape[2], input_shape[3]), padding, v.m)
    c_in, c_out = input_shape[1], w.shape[0]
    dtype = np.result_type(w, dy, *tiles)
    du = np.zeros((v.alpha**2, c_in, c_out), dtype=dtype)
    u = kernel_transform(w, v) if need_dx else None  # (α², C_in, C_out)
    dx = np.empty(input_shape, dtype=dtype) if need_dx else None
    for part, chunk_tiles in zip(_kept_chunks(tiles, grid), tiles, strict=True):
        d_products = _gradient_tiles(dy[part], grid, v)  # (α², tiles, C_out)
        # stacked GEMMs, as in forward: (C_in, tiles) @ (tiles, C_out) for each of the α²
        du += np.matmul(chunk_tiles.transpose(0, 2, 1), d_products)
        if dx is not None and u is not None:  # need_dx
            d_tiles = np.empty(chunk_tiles.shape, dtype)  # (α², tiles, C_in)
            # (tiles, C_out) @ (C_out, C_in) for each of the α²
            np.matmul(d_products, u.transpose(0, 2, 1), out=d_tiles)
            _input_tiles_adjoint(d_tiles, grid, v, dx[part])
    return dx, kernel_gradient(du, v)

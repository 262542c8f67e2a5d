"""Does Winograd F(2×2, 3×3) beat fcnn's im2col convolution in NumPy? A measurement.

    python -m benchmarks.winograd [--rounds 7] [--chunks 4 8 16]

Times the forward pass of a stride-1, "same" 3×3 convolution at the shapes of the
presets' 3×3 layers (BatchNorm net and tiny VGG at batch 128) on one BLAS thread, in
interleaved rounds (CPU time, medians): fcnn's :func:`fcnn.layers.conv.forward` against
two Winograd forwards written as carefully as NumPy allows, both with chunks of images so
the transformed tiles stay in the cache and the 16 products as one stacked ``matmul``:

- :func:`winograd_forward`: the padded input's columns de-interleaved, so that every
  transform pass reads contiguous runs of one tile row;
- :func:`winograd_polyphase_forward`: the padded input split by row parity into two
  planes whose rows hold both column parities; every transform pass is then one long 1-D
  operation over a whole plane (column taps as stride-2 views, row taps as shifts of a
  plane row), never a loop over short rows. It computes one garbage tile per tile row and
  column (the planes' extra row and column), which the 16 GEMMs multiply too.

It also reports where the time goes and the float32 error against the im2col result.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016):
``Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`` for each 4×4 input tile ``d`` and 3×3 kernel ``g``
gives a 2×2 output tile with 16 multiplications instead of 36; over channels the
products become 16 GEMMs ``(C_out, C_in) @ (C_in, tiles)``.

The library's convolution does not use it: see the measurements in the note of the
performance issue and ``reports/winograd.md`` (written by this script).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

# one BLAS thread, set before NumPy loads its BLAS: the comparison is of the algorithms
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from fcnn import random as fr
from fcnn.io import atomic_write_text
from fcnn.layers import conv
from fcnn.runtime import keep_freed_memory

# F(2x2, 3x3): kernel transform G (4x3); the input (B^T) and output (A^T) transforms are
# written out as the additions they are, in winograd_forward
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])

# (batch, C_in, C_out, side): the 3x3 layers of bn_net_mnist (28x28) and tiny_vgg_cifar
SHAPES = [
    (128, 32, 32, 28),
    (128, 32, 64, 14),
    (128, 64, 64, 14),
    (128, 32, 32, 32),
    (128, 64, 64, 16),
    (128, 128, 128, 8),
]


def _stage_clock(spent: dict | None):
    """``tick(stage)`` adds the seconds since the previous tick to ``spent[stage]`` (a no-op
    when ``spent`` is None)."""
    clock = [time.perf_counter()]

    def tick(stage: str) -> None:
        if spent is not None:
            now = time.perf_counter()
            spent[stage] = spent.get(stage, 0.0) + now - clock[0]
            clock[0] = now

    return tick


def winograd_forward(w, b, x, chunk=8, spent=None):
    """Stride-1, padding-1 3x3 correlation of ``x`` (N, C, H, W) with ``w`` (C_out, C, 3, 3)
    plus ``b``, by F(2x2, 3x3); ``spent`` (a dict) collects seconds per stage."""
    n, c, h, wd = x.shape
    co, pad = w.shape[0], 1
    oh, ow = h, wd
    th, tw = (oh + 1) // 2, (ow + 1) // 2  # output tiles per column and row
    hp = 2 * th + 2
    u = np.einsum("ai,ocij,bj->aboc", G, w, G).reshape(16, co, c).astype(x.dtype)
    y = np.empty((n, co, oh, ow), x.dtype)
    tick = _stage_clock(spent)
    for start in range(0, n, chunk):
        xs = x[start : start + chunk]
        k = xs.shape[0]
        # the padded input with its columns de-interleaved: xq[q] holds padded columns
        # q, q+2, q+4, ... so that each tile column is a contiguous slice
        xq = np.zeros((2, c, k, hp, tw + 1), x.dtype)
        xt = xs.transpose(1, 0, 2, 3)  # (k, C, H, W) -> (C, k, H, W) view
        for q in (0, 1):
            first = (q - pad) % 2  # first input column that lands on parity q
            cols = xt[..., first::2]
            at = (first + pad) // 2
            xq[q, :, :, pad : pad + h, at : at + cols.shape[-1]] = cols
        tick("pad and de-interleave")
        e0, e1, o0, o1 = xq[0, ..., :tw], xq[0, ..., 1:], xq[1, ..., :tw], xq[1, ..., 1:]
        s = np.empty((4, c, k, hp, tw), x.dtype)  # B^T applied along the columns
        np.subtract(e0, e1, out=s[0])
        np.add(o0, e1, out=s[1])
        np.subtract(e1, o0, out=s[2])
        np.subtract(o0, o1, out=s[3])
        tick("input transform, columns")
        v = np.empty((4, 4, c, k, th, tw), x.dtype)  # and along the rows
        r = [s[:, :, :, a : a + 2 * th : 2, :] for a in range(4)]  # (4, C, k, th, tw) views
        np.subtract(r[0], r[2], out=v[0])
        np.add(r[1], r[2], out=v[1])
        np.subtract(r[2], r[1], out=v[2])
        np.subtract(r[1], r[3], out=v[3])
        tick("input transform, rows")
        m = np.matmul(u, v.reshape(16, c, k * th * tw))  # (16, C_out, k*th*tw)
        m = m.reshape(4, 4, co, k, th, tw)
        tick("16 GEMMs")
        r0 = m[0] + m[1]
        r0 += m[2]
        r1 = m[1] - m[2]
        r1 -= m[3]
        tiles = np.empty((k, co, th, 2, tw, 2), x.dtype)
        for i, rows in enumerate((r0, r1)):
            out = tiles[:, :, :, i, :, 0].transpose(1, 0, 2, 3)  # (C_out, k, th, tw) view
            np.add(rows[0], rows[1], out=out)
            out += rows[2]
            out = tiles[:, :, :, i, :, 1].transpose(1, 0, 2, 3)
            np.subtract(rows[1], rows[2], out=out)
            out -= rows[3]
        tick("output transform")
        # (k, C_out, th, 2, tw, 2) -> (k, C_out, 2*th, 2*tw), cropped to (OH, OW)
        y[start : start + k] = tiles.reshape(k, co, 2 * th, 2 * tw)[:, :, :oh, :ow]
        y[start : start + k] += b.reshape(1, co, 1, 1)
        tick("copy out and bias")
    return y


def winograd_polyphase_forward(w, b, x, chunk=2, spent=None):
    """The same convolution as :func:`winograd_forward` (stride 1, padding 1, 3x3), on the
    row-parity planes described in the module docstring; ``spent`` collects seconds per
    stage."""
    n, c, h, wd = x.shape
    co, pad = w.shape[0], 1
    oh, ow = h, wd
    th, tw = (oh + 1) // 2, (ow + 1) // 2  # output tiles per column and row
    rows, cols = th + 1, tw + 1  # a plane's rows and tile columns (one garbage of each)
    pitch = 2 * cols  # values per plane row: both column parities
    u = np.einsum("ai,ocij,bj->aboc", G, w, G).reshape(16, co, c).astype(x.dtype)
    y = np.empty((n, co, oh, ow), x.dtype)
    bias = b.reshape(co, 1).astype(x.dtype)
    tick = _stage_clock(spent)
    for start in range(0, n, chunk):
        xs = x[start : start + chunk]
        k = xs.shape[0]
        size = c * k * rows * cols  # tile positions of one transform plane
        # planes[q] holds padded rows q, q+2, ... of every (channel, image), `pitch` values
        # each, plus a tail so that the shifted views below stay inside the buffer
        planes = np.zeros((2, 2 * size + pitch + 2), x.dtype)
        xt = xs.transpose(1, 0, 2, 3)  # (k, C, H, W) -> (C, k, H, W) view
        for q in (0, 1):
            view = planes[q, : 2 * size].reshape(c, k, rows, pitch)  # (C, k, rows, pitch)
            first = (q - pad) % 2  # first input row that lands on parity q
            at = (first + pad - q) // 2
            src = xt[:, :, first::2]
            fit = min(src.shape[2], rows - at)
            view[:, :, at : at + fit, pad : pad + wd] = src[:, :, :fit]
        tick("pad and split rows")
        # B^T along the columns: tap t of tile column j is value 2j + t of its plane row
        s = np.empty((2, 4, size + cols), x.dtype)  # (row parity, transformed column, pos)
        for q in (0, 1):
            d = [planes[q, t : t + 2 * (size + cols) : 2] for t in range(4)]  # stride-2 views
            np.subtract(d[0], d[2], out=s[q, 0])
            np.add(d[1], d[2], out=s[q, 1])
            np.subtract(d[2], d[1], out=s[q, 2])
            np.subtract(d[1], d[3], out=s[q, 3])
        tick("input transform, columns")
        # and along the rows: tap t of tile row i is plane row i + t // 2 of parity t % 2
        v = np.empty((4, 4, size), x.dtype)
        for j in range(4):
            r = [s[t % 2, j, (t // 2) * cols : (t // 2) * cols + size] for t in range(4)]
            np.subtract(r[0], r[2], out=v[0, j])
            np.add(r[1], r[2], out=v[1, j])
            np.subtract(r[2], r[1], out=v[2, j])
            np.subtract(r[1], r[3], out=v[3, j])
        tick("input transform, rows")
        m = np.matmul(u, v.reshape(16, c, size // c))  # (16, C_out, k*rows*cols)
        tick("16 GEMMs")
        m[5] += bias  # A^T's column 1 is all ones: a bias on product (1, 1) reaches every pixel
        m = m.reshape(4, 4, co * (size // c))
        t_ = np.empty((4, 2, m.shape[-1]), x.dtype)  # A^T along the columns
        for i in range(4):
            np.add(m[i, 0], m[i, 1], out=t_[i, 0])
            t_[i, 0] += m[i, 2]
            np.subtract(m[i, 1], m[i, 2], out=t_[i, 1])
            t_[i, 1] -= m[i, 3]
        out = np.empty((2, co * k * rows * pitch), x.dtype)  # output rows by parity
        for j in (0, 1):  # A^T along the rows, columns written interleaved (stride 2)
            even, odd = out[0, j::2], out[1, j::2]
            np.add(t_[0, j], t_[1, j], out=even)
            even += t_[2, j]
            np.subtract(t_[1, j], t_[2, j], out=odd)
            odd -= t_[3, j]
        tick("output transform")
        yc = y[start : start + k].transpose(1, 0, 2, 3)  # (C_out, k, OH, OW) view
        for i in (0, 1):
            dst = yc[:, :, i::2]
            rows_i = out[i].reshape(co, k, rows, pitch)  # (C_out, k, rows, pitch)
            dst[...] = rows_i[:, :, : dst.shape[2], :ow]
        tick("copy out")
    return y


DESIGNS = {"columns": winograd_forward, "polyphase": winograd_polyphase_forward}


def _row(shape, chunks: dict[str, list[int]], rounds, rng) -> str:
    """The report's table row for one (batch, C_in, C_out, side)."""
    n, c, co, side = shape
    x = rng.standard_normal((n, c, side, side)).astype(np.float32)
    _, p = conv.init(fr.key(0), (c, side, side), out_channels=co, kernel_size=3, padding=1)
    b = rng.standard_normal(co).astype(np.float32)
    p = conv.Conv2DParams(w=p.w, b=b, padding=p.padding)
    reference = conv.forward(p, x)[0]
    scale = np.abs(reference).max()
    runs = {("im2col", 0): lambda: conv.forward(p, x)}
    for design, fn in DESIGNS.items():
        for chunk in chunks[design]:
            runs[design, chunk] = lambda fn=fn, chunk=chunk: fn(p.w, b, x, chunk)
    times: dict = {name: [] for name in runs}
    for _ in range(rounds):  # interleaved: every way once per round
        for name, run in runs.items():
            t0 = time.process_time()
            run()
            times[name].append(time.process_time() - t0)
    ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    cells = [f"({n}, {c}, {co}, {side})", f"{ms['im2col', 0]:.1f}"]
    for design, fn in DESIGNS.items():
        chunk = min(chunks[design], key=lambda k, d=design: ms[d, k])
        error = float(np.abs(fn(p.w, b, x, chunk) - reference).max() / scale)
        ratio = ms[design, chunk] / ms["im2col", 0]
        cells.append(f"{ms[design, chunk]:.1f} ({chunk}): **{ratio:.2f}×**, error {error:.1e}")
    spent: dict[str, float] = {}
    winograd_polyphase_forward(p.w, b, x, chunks["polyphase"][0], spent)
    cells.append(", ".join(f"{k} {1e3 * v:.1f}" for k, v in spent.items()))
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.winograd", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--chunks", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--polyphase-chunks", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--out", default="reports")
    args = parser.parse_args(argv)
    keep_freed_memory()  # as fcnn train does: fresh temporaries reuse pages
    rng = np.random.default_rng(0)
    chunks = {"columns": args.chunks, "polyphase": args.polyphase_chunks}
    lines = [
        "# Winograd F(2×2, 3×3) in NumPy against fcnn's im2col convolution (forward)",
        "",
        f"`python -m benchmarks.winograd --rounds {args.rounds}`: one BLAS thread, glibc "
        "tuned as `fcnn train` tunes it, CPU time, median of "
        f"{args.rounds} interleaved rounds, milliseconds. Each Winograd design at its "
        "fastest chunk (images per chunk in brackets), its time over im2col's, and its "
        "float32 error against im2col (max |difference| over max |output|).",
        "",
        "| shape (N, C_in, C_out, side) | im2col | Winograd, de-interleaved columns | "
        "Winograd, polyphase planes | polyphase stages (smallest chunk) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for shape in SHAPES:
        lines.append(_row(shape, chunks, args.rounds, rng))
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    os.makedirs(args.out, exist_ok=True)
    atomic_write_text(os.path.join(args.out, "winograd.md"), text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

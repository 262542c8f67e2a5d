"""Max-pool backward against PyTorch's, and against the least a NumPy backward can do.

    python -m benchmarks.maxpool [--rounds 15] [--out reports]   # writes reports/maxpool.md

Issue #19 asks for max-pool backward within 1.5x of PyTorch's. This measures, at the 2x2
max-pool inputs of the presets (batch 128, as the layer tables of ``python -m benchmarks``;
the DermaScan net's 96 px block at the 64 images of one of two processes):

- PyTorch's ``MaxPool2d``: forward in training mode (it records each window's argmax), and
  its backward alone (``torch.autograd.grad`` on the recorded graph: zero the input
  gradient, scatter ``dy`` to the recorded indices), at its default threads and at one;
- fcnn's ``pooling.forward`` / ``pooling.backward`` (the tiled path: backward compares x with
  the window maxima and routes ``dy`` to the first maximum of each window);
- **recorded routing**, the fastest NumPy backward we could build (not used by fcnn): forward
  also records, PyTorch-style, a full-size bit mask of where each window's first maximum is,
  so backward is a single masked pass that writes the input gradient (``dy`` duplicated into
  the two halves of a 64-bit word, AND-ed with the mask of two adjacent pixels);
- **one copy**: writing one fresh input-sized float32 array from another (``np.copy``), less
  than any backward that produces the input gradient can do.

Wall time (PyTorch runs its threads, NumPy's element-wise loops one thread), the median of
interleaved rounds, with freed memory kept for reuse as ``fcnn train`` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Callable, Iterator

import numpy as np

from benchmarks.timing import interleaved_ms
from fcnn.io import atomic_write_text
from fcnn.layers import pooling
from fcnn.runtime import keep_freed_memory

__all__ = ["main", "recorded_backward", "recorded_forward"]

# (where, max-pool input (N, C, H, W))
SHAPES = [
    ("LeNet, pool 1", (128, 6, 28, 28)),
    ("LeNet, pool 2", (128, 16, 10, 10)),
    ("BN net, pool 1", (128, 32, 28, 28)),
    ("BN net, pool 2", (128, 64, 14, 14)),
    ("tiny VGG, pool 1", (128, 32, 32, 32)),
    ("tiny VGG, pool 2", (128, 64, 16, 16)),
    ("tiny VGG, pool 3", (128, 128, 8, 8)),
    ("DermaScan 96 px, block 1", (64, 32, 96, 96)),
]

# A float32's bits repeated in both halves of a uint64: bits * (2**32 + 1).
_BOTH_HALVES = np.uint64(0x1_0000_0001)
_LOW_HALF = np.uint64(0xFFFF_FFFF)
_HIGH_HALF = np.uint64(0xFFFF_FFFF_0000_0000)


def _in_both_halves(v: np.ndarray) -> np.ndarray:
    """(N, C, OH, OW) float32 -> (N, C, OH, OW) uint64 holding each value's bits twice, so
    that its float32 view is (N, C, OH, 2*OW) with every value repeated along the row."""
    doubled = v.view(np.uint32).astype(np.uint64)
    doubled *= _BOTH_HALVES
    return doubled


def recorded_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2x2 max pooling of an (N, C, 2*OH, 2*OW) float32 ``x`` that also records, for the
    backward pass, a (N, C, OH, 2, OW) uint64 mask: per pair of horizontally adjacent pixels,
    all ones in the half (little-endian: low = left pixel) of the window's first maximum."""
    n, c, h, w = x.shape
    oh = h // 2
    rows = np.maximum(x[:, :, 0::2], x[:, :, 1::2])  # (N, C, OH, W)
    y = np.maximum(rows[..., 0::2], rows[..., 1::2])  # (N, C, OH, OW)
    y_repeated = _in_both_halves(y).view(np.float32).reshape(n, c, oh, 1, w)
    hits = x.reshape(n, c, oh, 2, w) == y_repeated  # (N, C, OH, 2 window rows, W) bool
    pairs = hits.view(np.uint16)  # (N, C, OH, 2, OW): byte 0 = left pixel, byte 1 = right
    pairs ^= (pairs & (pairs >> 8)) << 8  # both halves hit: keep the left one
    pairs[:, :, :, 1] *= pairs[:, :, :, 0] == 0  # the top row hit: drop the bottom row
    codes = pairs.astype(np.uint64)  # 0, 0x1 (left) or 0x100 (right)
    mask = (codes & np.uint64(1)) * _LOW_HALF | (codes >> np.uint64(8)) * _HIGH_HALF
    return y, mask


def recorded_backward(mask: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """The input gradient (N, C, 2*OH, 2*OW) from ``recorded_forward``'s mask: one pass."""
    n, c, oh, _, ow = mask.shape
    dx = np.empty((n, c, 2 * oh, 2 * ow), dtype=np.float32)
    pairs = dx.view(np.uint64).reshape(mask.shape)  # (N, C, OH, 2, OW) pixel pairs
    np.bitwise_and(_in_both_halves(dy)[:, :, :, None, :], mask, out=pairs)
    return dx


def _torch_runs(x: np.ndarray, dy: np.ndarray, name: str) -> dict[str, Callable[[], object]]:
    """PyTorch's forward (training mode) and backward alone, at its current thread count."""
    import torch

    pool = torch.nn.MaxPool2d(2)
    x_t = torch.from_numpy(x).requires_grad_(True)
    y_t = pool(x_t)
    dy_t = torch.from_numpy(dy)
    return {
        f"{name} fwd": lambda: pool(x_t),
        f"{name} bwd": lambda: torch.autograd.grad(y_t, x_t, dy_t, retain_graph=True),
    }


@contextlib.contextmanager
def _torch_threads_set_to(threads: int) -> Iterator[None]:
    """PyTorch on ``threads`` threads within the block: set outside the timed calls, since
    changing the count resizes its thread team at the next call."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _measure(shape: tuple[int, ...], rng: np.random.Generator, threads: int, rounds: int):
    """Medians in ms of every run at ``shape``: fcnn's, the recorded routing's, one copy and
    PyTorch at ``threads`` interleaved; then PyTorch on one thread, interleaved on its own."""
    x = rng.standard_normal(shape).astype(np.float32)
    params = pooling.MaxPool2DParams()
    y, cache = pooling.forward(params, x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    _, mask = recorded_forward(x)
    # the recorded routing must be the layer's backward, ties to the first maximum included
    assert np.array_equal(recorded_backward(mask, dy), pooling.backward(params, cache, dy)[0])
    runs: dict[str, Callable[[], object]] = {
        "fcnn fwd": lambda: pooling.forward(params, x),
        "fcnn bwd": lambda: pooling.backward(params, cache, dy),
        "recorded fwd": lambda: recorded_forward(x),
        "recorded bwd": lambda: recorded_backward(mask, dy),
        "one copy": lambda: x.copy(),
    }
    with _torch_threads_set_to(threads):
        ms = interleaved_ms(runs | _torch_runs(x, dy, "torch"), rounds, warmup=True)
    with _torch_threads_set_to(1):
        ms |= interleaved_ms(_torch_runs(x, dy, "torch1"), rounds, warmup=True)
    return ms


def _torch_default_threads() -> int | None:
    """PyTorch's default thread count, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.maxpool", description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", default="reports")
    args = parser.parse_args(argv)
    t = _torch_default_threads()
    if t is None:
        print("PyTorch is not installed (pip install torch): nothing to compare against.")
        return 2
    keep_freed_memory()  # as fcnn train does
    rng = np.random.default_rng(0)
    header = (
        f"| where | input | PyTorch fwd / bwd ({t} threads) | PyTorch fwd / bwd (1 thread) "
        "| fcnn fwd / bwd | recorded routing fwd / bwd | one copy "
        f"| fcnn bwd / PyTorch's ({t} thr., 1 thr.) | recorded bwd / PyTorch's "
        "| fwd + bwd: fcnn / PyTorch, recorded / PyTorch |"
    )
    rows = [header, "| --- " * 10 + "|"]
    print(header, flush=True)
    for name, shape in SHAPES:
        ms = _measure(shape, rng, t, args.rounds)
        torch_fwd, torch_bwd = ms["torch fwd"], ms["torch bwd"]
        torch_total = torch_fwd + torch_bwd
        rows.append(
            f"| {name} | {shape} | {torch_fwd:.2f} / {torch_bwd:.2f} "
            f"| {ms['torch1 fwd']:.2f} / {ms['torch1 bwd']:.2f} "
            f"| {ms['fcnn fwd']:.2f} / {ms['fcnn bwd']:.2f} "
            f"| {ms['recorded fwd']:.2f} / {ms['recorded bwd']:.2f} | {ms['one copy']:.2f} "
            f"| {ms['fcnn bwd'] / torch_bwd:.2f}×, {ms['fcnn bwd'] / ms['torch1 bwd']:.2f}× "
            f"| {ms['recorded bwd'] / torch_bwd:.2f}× "
            f"| {(ms['fcnn fwd'] + ms['fcnn bwd']) / torch_total:.2f}×, "
            f"{(ms['recorded fwd'] + ms['recorded bwd']) / torch_total:.2f}× |"
        )
        print(rows[-1], flush=True)
    text = "\n".join(
        [
            "# Max-pool backward: PyTorch's, fcnn's, and the least a NumPy backward can do",
            "",
            f"`python -m benchmarks.maxpool --rounds {args.rounds}` on "
            f"{time.strftime('%Y-%m-%d')}: 2x2 windows, wall time in milliseconds, the median "
            f"of {args.rounds} interleaved rounds. What each column measures is in the "
            "module's docstring.",
            "",
            *rows,
        ]
    )
    atomic_write_text(os.path.join(args.out, "maxpool.md"), text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

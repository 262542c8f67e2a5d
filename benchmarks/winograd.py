"""Winograd F(2×2, 3×3) and F(4×4, 3×3) against the im2col (grid) convolution, layer by
layer: the measurements behind :func:`fcnn.winograd.variant`.

    python -m benchmarks.winograd [--rounds 7] [--out reports]

Times the forward and the backward pass (input and weight gradients) of every stride-1 3×3
convolution of the presets, at the images each replica of a default ``fcnn train`` run
holds (the config's batch over two replicas), on one BLAS thread as each replica runs,
with glibc tuned as ``fcnn train`` tunes it. Rounds are interleaved (every way of every
shape once per round) so the VM's drift hits both alike; times are medians of CPU time,
a ratio the median of the rounds' ratios. The float32 error is the largest difference from
the float64 result over the largest |output| (forward) or |gradient| (backward). Where the
chosen variant's chunks are cut to keep their data within ``fcnn.winograd.CHUNK_BYTES``, the
same variant with uncut chunks (``MIN_TILES`` tiles) is timed too, in the same rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

# one BLAS thread, set before NumPy loads its BLAS: as each replica of fcnn train runs
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from fcnn import random as fr
from fcnn import winograd
from fcnn.io import atomic_write_text
from fcnn.layers import conv
from fcnn.runtime import keep_freed_memory

# (where, images per replica, C_in, C_out, side) of every 3x3 convolution of the presets
# past the first (a 1- or 3-channel first layer is nowhere near the rule)
LAYERS = [
    ("bn_net_mnist", 64, 32, 32, 28),
    ("bn_net_mnist", 64, 32, 64, 14),
    ("bn_net_mnist", 64, 64, 64, 14),
    ("tiny_vgg_cifar", 64, 32, 32, 32),
    ("tiny_vgg_cifar", 64, 32, 64, 16),
    ("tiny_vgg_cifar", 64, 64, 64, 16),
    ("tiny_vgg_cifar", 64, 64, 128, 8),
    ("tiny_vgg_cifar", 64, 128, 128, 8),
    ("dermascan 64 px", 32, 32, 64, 32),
    ("dermascan 64 px", 32, 64, 128, 16),
    ("dermascan 64 px", 32, 128, 128, 16),
    ("dermascan 64 px", 32, 128, 256, 8),
    ("dermascan 96 px", 32, 32, 64, 48),
    ("dermascan 96 px", 32, 64, 128, 24),
    ("dermascan 96 px", 32, 128, 128, 24),
    ("dermascan 96 px", 32, 128, 256, 12),
]


def _cpu_ms(fn) -> float:
    t0 = time.process_time()
    fn()
    return 1e3 * (time.process_time() - t0)


def _error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / np.abs(want).max())


WAYS = ("grid", "winograd2", "winograd4")


@contextlib.contextmanager
def _uncut_chunks():
    """Within the block, Winograd chunks hold MIN_TILES tiles whatever their data's size."""
    committed = winograd.CHUNK_BYTES
    winograd.CHUNK_BYTES = 1 << 62
    try:
        yield
    finally:
        winograd.CHUNK_BYTES = committed


def _cut(layer, chosen: str) -> bool:
    """Whether the committed chunk limit cuts this layer's chunks below MIN_TILES tiles."""
    _, n, c_in, c_out, side = layer
    if chosen not in conv.WINOGRAD:
        return False
    v = conv.WINOGRAD[chosen]
    grid = winograd.tile_grid((side, side), (1, 1), v.m)
    with _uncut_chunks():
        uncut = winograd._chunks(n, grid, v, c_in + c_out, 4)
    return len(winograd._chunks(n, grid, v, c_in + c_out, 4)) != len(uncut)


def measure(layer, rounds: int, rng) -> dict:
    """Forward and backward milliseconds of every way, each Winograd way's ratios to im2col
    and its float32 errors, for one layer."""
    _, n, c_in, c_out, side = layer
    x = rng.standard_normal((n, c_in, side, side)).astype(np.float32)
    _, p = conv.init(fr.key(0), (c_in, side, side), out_channels=c_out, kernel_size=3, padding=1)
    p = conv.Conv2DParams(w=p.w, b=rng.standard_normal(c_out).astype(np.float32), padding=1)
    outputs = {way: conv.forward_by(way, p, x) for way in WAYS}
    dy = rng.standard_normal(outputs["grid"][0].shape).astype(np.float32)
    chosen = conv.algorithm(outputs["grid"][1].geo, c_in, c_out, n)
    cut = _cut(layer, chosen)
    times = {(way, part): [] for way in WAYS for part in ("fwd", "bwd")}
    uncut_steps = []
    for _ in range(rounds):
        for way in WAYS:
            times[way, "fwd"].append(_cpu_ms(lambda way=way: conv.forward_by(way, p, x)))
            cache = outputs[way][1]
            times[way, "bwd"].append(_cpu_ms(lambda cache=cache: conv.backward(p, cache, dy)))
        if cut:
            with _uncut_chunks():
                t0 = time.process_time()
                _, uncut_cache = conv.forward_by(chosen, p, x)
                conv.backward(p, uncut_cache, dy)
                uncut_steps.append(1e3 * (time.process_time() - t0))
    result = {"layer": layer, "chosen": chosen}
    steps = {
        way: [f + b for f, b in zip(times[way, "fwd"], times[way, "bwd"], strict=True)]
        for way in WAYS
    }
    if cut:  # the committed (cut) chunks over uncut ones, round by round
        ratios = zip(steps[chosen], uncut_steps, strict=True)
        result["cut"] = statistics.median(c / u for c, u in ratios)
    p64 = conv.Conv2DParams(w=p.w.astype(float), b=p.b.astype(float), padding=1)
    y64, cache64 = conv.forward_by("grid", p64, x.astype(float))
    dx64, g64 = conv.backward(p64, cache64, dy.astype(float))
    for way in WAYS:
        result[way] = tuple(statistics.median(times[way, part]) for part in ("fwd", "bwd"))
        result[way, "step"] = statistics.median(
            w / g for w, g in zip(steps[way], steps["grid"], strict=True)
        )
        dx, g = conv.backward(p, outputs[way][1], dy)
        result[way, "errors"] = (
            _error(outputs[way][0], y64),
            _error(dx, dx64),
            _error(g.w, g64.w),
        )
    return result


def _row(r: dict) -> str:
    where, n, c_in, c_out, side = r["layer"]
    cells = [where, f"({n}, {c_in}, {c_out}, {side})"]
    for way in WAYS:
        fwd, bwd = r[way]
        ratio = "" if way == "grid" else f" (**{r[way, 'step']:.2f}×**)"
        cells.append(f"{fwd:.1f} / {bwd:.1f}{ratio}")
    for way in WAYS:
        cells.append(" / ".join(f"{e:.0e}" for e in r[way, "errors"]))
    cut = f"{r['cut']:.2f}×" if "cut" in r else "–"
    return "| " + " | ".join([*cells, r["chosen"], cut]) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.winograd", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", default="reports")
    args = parser.parse_args(argv)
    keep_freed_memory()  # as fcnn train does: fresh temporaries reuse pages
    rng = np.random.default_rng(0)
    lines = [
        "# Winograd F(2×2, 3×3) and F(4×4, 3×3) against im2col, layer by layer",
        "",
        f"`python -m benchmarks.winograd --rounds {args.rounds}`: one BLAS thread (as each "
        "replica of `fcnn train` runs), glibc tuned as `fcnn train` tunes it, CPU time in "
        f"milliseconds (forward / backward, the backward with both gradients), medians of "
        f"{args.rounds} interleaved rounds; in brackets the median of the rounds' ratios of "
        "forward + backward to im2col's. Shapes are (images per replica, C_in, C_out, side), "
        "padding 1. The float32 error of the output, input gradient and weight gradient is "
        "the largest difference from the float64 result over the largest magnitude. The last "
        "column but one is what `fcnn.layers.conv.algorithm` picks; the last, where its chunks "
        "are cut to `fcnn.winograd.CHUNK_BYTES`, the median ratio of its forward + backward "
        "with those chunks to the same with uncut chunks of `MIN_TILES` tiles.",
        "",
        "| preset | shape | im2col | F(2×2) | F(4×4) | error im2col | error F(2×2) "
        "| error F(4×4) | chosen | cut chunks |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for layer in LAYERS:
        lines.append(_row(measure(layer, args.rounds, rng)))
        print(lines[-1], flush=True)
    atomic_write_text(os.path.join(args.out, "winograd.md"), "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The measurements behind the kernel choices in fcnn's layers, regenerated on demand.

    python -m benchmarks.kernels [--rounds 9]   # writes reports/kernels.md

The layer modules say *why* a path is chosen; the numbers live here, measured on the
machine at hand (one BLAS thread, CPU time, the median of interleaved rounds), so that a
comment never carries a timing from another day:

1. the stride-1 convolution's input gradient, by each of its three ways
   (``fcnn.layers.conv.dx_method``: patches, grid) at the presets' shapes;
2. the stride-1 chunk budget (``CHUNK_BYTES``, ``FULL_CHUNK_CHANNELS``): forward and
   backward with the committed budget against whole-batch chunks and a 2 MB budget for every
   channel count;
3. max pooling with windows that tile the input: the tiled path (row maxima, then
   column maxima) against the general window path, and its chunks of images
   (``pooling.CHUNK_BYTES``) against the whole batch at once;
4. BatchNorm's per-channel operands: an element-wise operation between an (N, C, H, W)
   array and a per-channel vector broadcast as (1, C, 1, 1), against the same operation on
   rows of one example each with the vector repeated to a row (``batchnorm._flat``).

The stride-1 convolutions here run the im2col (grid) path whatever ``conv.algorithm`` picks
for their shapes: these are that path's choices (``benchmarks.winograd`` compares it with
Winograd).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads its BLAS

import numpy as np

from benchmarks.timing import interleaved_cpu_ms
from fcnn import random as fr
from fcnn.io import atomic_write_text
from fcnn.layers import conv, pooling

__all__ = ["main"]

# (batch, C_in, C_out, side, kernel, padding): LeNet's, the BN net's, tiny VGG's convolutions
CONV_SHAPES = [
    (64, 6, 16, 14, 5, 0),
    (64, 16, 32, 14, 3, 1),
    (64, 32, 32, 28, 3, 1),
    (64, 32, 64, 14, 3, 1),
    (64, 64, 64, 14, 3, 1),
    (64, 64, 128, 16, 3, 1),
    (64, 128, 128, 8, 3, 1),
]
POOL_SHAPES = [
    (64, 6, 28, 28),
    (64, 32, 28, 28),
    (128, 32, 32, 32),
    (128, 128, 8, 8),
    (64, 32, 96, 96),  # the DermaScan net's first block at 96x96
    (64, 64, 48, 48),
]
# BatchNorm inputs: the BN net's, tiny VGG's and the DermaScan net's (at 96x96) per replica
NORM_SHAPES = [(64, 32, 28, 28), (64, 64, 14, 14), (64, 128, 8, 8), (32, 128, 24, 24)]


@contextlib.contextmanager
def _patched(module, **values) -> Iterator[None]:
    old = {k: getattr(module, k) for k in values}
    for k, v in values.items():
        setattr(module, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(module, k, v)


def _conv_case(shape, rng):
    n, c_in, c_out, side, k, pad = shape
    x = rng.standard_normal((n, c_in, side, side)).astype(np.float32)
    _, p = conv.init(fr.key(0), (c_in, side, side), out_channels=c_out, kernel_size=k, padding=pad)
    y, cache = conv.forward_by("grid", p, x)
    return p, x, cache, rng.standard_normal(y.shape).astype(np.float32)


def _dx_rows(rounds: int, rng) -> list[str]:
    rows = []
    for shape in CONV_SHAPES:
        p, _, cache, dy = _conv_case(shape, rng)

        def by(method, p=p, cache=cache, dy=dy):
            def run():
                with _patched(conv, dx_method=lambda c_in, c_out: method):
                    conv.backward(p, cache, dy)

            return run

        ms = interleaved_cpu_ms({m: by(m) for m in ("patches", "grid")}, rounds)
        chosen = conv.dx_method(shape[1], shape[2])
        rows.append(
            f"| {shape[:4]} {shape[4]}x{shape[4]} | {ms['patches']:.2f} | "
            f"{ms['grid']:.2f} | {chosen} | {min(ms, key=ms.get)} |"
        )
    return rows


def _chunk_rows(rounds: int, rng) -> list[str]:
    rows = []
    for shape in CONV_SHAPES:
        p, x, _, dy = _conv_case(shape, rng)

        def step(p=p, x=x, dy=dy):
            _, cache = conv.forward_by("grid", p, x)
            conv.backward(p, cache, dy)

        def with_budget(**values):
            def run():
                with _patched(conv, **values):
                    step()

            return run

        ms = interleaved_cpu_ms(
            {
                "committed": step,
                "2 MB for all": with_budget(FULL_CHUNK_CHANNELS=1),
                "whole batch": with_budget(CHUNK_BYTES=1 << 40, SMALL_GEMM=0),
            },
            rounds,
        )
        rows.append(
            f"| {shape[:4]} {shape[4]}x{shape[4]} | {ms['committed']:.2f} | "
            f"{ms['2 MB for all']:.2f} | {ms['whole batch']:.2f} |"
        )
    return rows


def _pool_rows(rounds: int, rng) -> list[str]:
    rows = []
    for shape in POOL_SHAPES:
        x = rng.standard_normal(shape).astype(np.float32)
        _, p = pooling.init(fr.key(0), shape[1:], kind=pooling.MaxPool2DParams, window=2)

        def forward_backward(p=p, x=x):
            y, cache = pooling.forward(p, x)
            pooling.backward(p, cache, np.ones_like(y))

        def windows(p=p, x=x):
            with _patched(pooling, is_tiled=lambda geo: False):
                forward_backward(p, x)

        def tiled_forward(p=p, x=x):
            pooling.forward(p, x)

        def window_forward(p=p, x=x):
            with _patched(pooling, is_tiled=lambda geo: False):
                pooling.forward(p, x)

        def whole_batch(p=p, x=x):
            with _patched(pooling, CHUNK_BYTES=1 << 40):
                forward_backward(p, x)

        ms = interleaved_cpu_ms(
            {"tiled": tiled_forward, "windows": window_forward,
             "tiled f+b": forward_backward, "windows f+b": windows, "whole": whole_batch},
            rounds,
        )  # fmt: skip
        rows.append(
            f"| {shape} | {ms['tiled']:.2f} | {ms['windows']:.2f} | {ms['tiled f+b']:.2f} | "
            f"{ms['windows f+b']:.2f} | {ms['whole']:.2f} |"
        )
    return rows


def _norm_rows(rounds: int, rng) -> list[str]:
    rows = []
    for shape in NORM_SHAPES:
        n, c, h, w = shape
        x = rng.standard_normal(shape).astype(np.float32)
        v = rng.standard_normal(c).astype(np.float32)
        ms = interleaved_cpu_ms(
            {
                "broadcast": lambda x=x, v=v, c=c: x * v.reshape(1, c, 1, 1),
                "rows": lambda x=x, v=v, n=n, hw=h * w: x.reshape(n, -1) * np.repeat(v, hw),
            },
            rounds,
        )
        rows.append(f"| {shape} | {ms['broadcast']:.2f} | {ms['rows']:.2f} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kernels", description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--out", default="reports")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    lines = [
        "# Kernel choices, measured",
        "",
        f"`python -m benchmarks.kernels --rounds {args.rounds}`: one BLAS thread, CPU time, "
        f"median of {args.rounds} interleaved rounds, milliseconds. Shapes are "
        "(batch, C_in, C_out, side) and the kernel.",
        "",
        "## Stride-1 input gradient (conv backward) by each way",
        "",
        "| shape | patches | grid | dx_method chooses | fastest here |",
        "| --- | --- | --- | --- | --- |",
        *_dx_rows(args.rounds, rng),
        "",
        "## Stride-1 chunk budget (conv forward + backward)",
        "",
        "| shape | committed budget | 2 MB for every channel count | whole batch, one chunk |",
        "| --- | --- | --- | --- |",
        *_chunk_rows(args.rounds, rng),
        "",
        "## Max pooling, 2x2 windows that tile the input",
        "",
        "| input | tiled forward | window forward | tiled fwd + bwd | window fwd + bwd "
        "| tiled fwd + bwd, whole batch in one chunk |",
        "| --- | --- | --- | --- | --- | --- |",
        *_pool_rows(args.rounds, rng),
        "",
        "## BatchNorm's per-channel operands (one multiplication)",
        "",
        "| input | (1, C, 1, 1) broadcast | rows, vector repeated |",
        "| --- | --- | --- |",
        *_norm_rows(args.rounds, rng),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(args.out, exist_ok=True)
    atomic_write_text(os.path.join(args.out, "kernels.md"), text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

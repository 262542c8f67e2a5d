"""BatchNorm → MaxPool as one step (``fcnn.layers.fused``) against the two layers in turn.

    python -m benchmarks.fused [--rounds 9] [--out reports]   # writes reports/fused.md

Training mode, forward + backward of the pair (the ReLU that ``serial`` runs after the pool
is the same either way and left out), at the pairs' inputs in the presets on each of two
processes (batch 64 of the benchmarks' 128): one BLAS thread, CPU time, the median of
interleaved rounds, with freed memory kept for reuse as ``fcnn train`` runs.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads its BLAS

import numpy as np

from benchmarks.timing import interleaved_cpu_ms
from fcnn import random as fr
from fcnn.io import atomic_write_text
from fcnn.layers import batchnorm, fused, pooling
from fcnn.runtime import keep_freed_memory

__all__ = ["main"]

# (where, input of the pair (N, C, H, W)): the BatchNorm2D -> MaxPool2D pairs of the presets
SHAPES = [
    ("BN net, block 2", (64, 32, 28, 28)),
    ("BN net, block 4", (64, 64, 14, 14)),
    ("tiny VGG, stage 1", (64, 32, 32, 32)),
    ("tiny VGG, stage 2", (64, 64, 16, 16)),
    ("tiny VGG, stage 3", (64, 128, 8, 8)),
    ("DermaScan 64 px, block 1", (64, 32, 64, 64)),
    ("DermaScan 64 px, block 2", (64, 64, 32, 32)),
    ("DermaScan 64 px, block 4", (64, 128, 16, 16)),
    ("DermaScan 96 px, block 1", (64, 32, 96, 96)),
    ("DermaScan 96 px, block 2", (64, 64, 48, 48)),
    ("DermaScan 96 px, block 4", (64, 128, 24, 24)),
]


def _runs(shape: tuple[int, ...], rng: np.random.Generator) -> dict[str, Callable[[], object]]:
    c = shape[1]
    x = rng.standard_normal(shape).astype(np.float32)
    _, bn, state = batchnorm.init(fr.key(0), shape[1:])
    bn = batchnorm.BatchNormParams(gamma=rng.uniform(0.5, 1.5, c).astype(np.float32), beta=bn.beta)
    pool = pooling.MaxPool2DParams()
    dy = rng.standard_normal((shape[0], c, shape[2] // 2, shape[3] // 2)).astype(np.float32)

    def unfused() -> object:
        y_bn, c_bn, _ = batchnorm.forward(bn, x, state=state, train=True)
        _, c_pool = pooling.forward(pool, y_bn)
        return batchnorm.backward(bn, c_bn, pooling.backward(pool, c_pool, dy)[0])

    def one_step() -> object:
        _, cache, _ = fused.forward(bn, pool, x, state=state)
        return fused.backward(bn, pool, cache, dy)

    return {"unfused": unfused, "fused": one_step}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fused", description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--out", default="reports")
    args = parser.parse_args(argv)
    keep_freed_memory()  # as fcnn train does
    rng = np.random.default_rng(0)
    rows = []
    for name, shape in SHAPES:
        ms = interleaved_cpu_ms(_runs(shape, rng), args.rounds, warmup=True)
        ratio = ms["fused"] / ms["unfused"]
        rows.append(f"| {name} | {shape} | {ms['unfused']:.2f} | {ms['fused']:.2f} | {ratio:.2f} |")
        print(rows[-1], flush=True)
    text = "\n".join(
        [
            "# BatchNorm → MaxPool: one step against the two layers",
            "",
            f"`python -m benchmarks.fused --rounds {args.rounds}`: training-mode forward + "
            "backward of the pair, one BLAS thread, CPU time, median of "
            f"{args.rounds} interleaved rounds, milliseconds; 2x2 windows. Blocks are counted "
            "as conv-BatchNorm-ReLU units in each net's order.",
            "",
            "| where | input | two layers | one step | one step / two layers |",
            "| --- | --- | --- | --- | --- |",
            *rows,
        ]
    )
    atomic_write_text(os.path.join(args.out, "fused.md"), text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Where a training step of a preset spends its time: each layer's forward and backward, and
each kind of op's share of the step, beside PyTorch's same layers.

Issue #36 asks that the kernel work on airbench's network go where the profile says. The
step is timed the way one process of ``fcnn train --procs 2`` runs it: its shard of the
batch (512 of 1,024 images) on one BLAS thread, PyTorch on one thread too; every layer in
training mode, on the activations the layer before produced, the median of ``--repeats``.

    python -m benchmarks.step_profile [--preset airbench_cifar] [--batch 512] [--repeats 3]
        [--out reports/step-profile-airbench.md]
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads its BLAS

from benchmarks import fcnn_side, torch_side
from fcnn import models
from fcnn.io import atomic_write_text


def profile(preset_name: str, batch: int, repeats: int) -> tuple[list[dict], list[dict] | None]:
    """fcnn's per-layer rows and PyTorch's (None without PyTorch)."""
    preset = models.get(preset_name)
    mine = fcnn_side.per_layer(preset, batch, repeats)
    if not torch_side.available():
        return mine, None
    import torch

    torch.set_num_threads(1)
    theirs = torch_side.per_layer(preset.network.spec, preset.input_shape, batch, repeats)
    return mine, theirs


def report(preset_name: str, batch: int, mine: list[dict], theirs: list[dict] | None) -> str:
    """The profile as Markdown: shares by kind of op, then every layer."""
    total = sum(r["fwd_ms"] + r["bwd_ms"] for r in mine)
    by_kind: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for i, r in enumerate(mine):
        kind = r["spec"]["type"]
        by_kind[kind][0] += r["fwd_ms"] + r["bwd_ms"]
        if theirs is not None:
            by_kind[kind][1] += theirs[i]["fwd_ms"] + theirs[i]["bwd_ms"]
    lines = [
        f"# A training step of {preset_name}, layer by layer",
        "",
        f"`python -m benchmarks.step_profile --preset {preset_name} --batch {batch}`: one "
        f"process's shard of {batch} images, one BLAS thread (PyTorch: one thread), training "
        "mode, forward + backward of each layer, medians.",
        "",
        "| op | fcnn ms | share of fcnn's step | PyTorch ms | fcnn / PyTorch |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for kind, (ms, torch_ms) in sorted(by_kind.items(), key=lambda kv: -kv[1][0]):
        ratio = f"{ms / torch_ms:.2f}" if theirs is not None and torch_ms else "-"
        torch_cell = f"{torch_ms:.1f}" if theirs is not None else "-"
        lines.append(f"| {kind} | {ms:.1f} | {ms / total:.1%} | {torch_cell} | {ratio} |")
    torch_total = sum(r["fwd_ms"] + r["bwd_ms"] for r in theirs) if theirs is not None else None
    lines += [
        f"| **all** | **{total:.1f}** | 100 % | "
        f"{'-' if torch_total is None else f'{torch_total:.1f}'} | "
        f"{'-' if torch_total is None else f'{total / torch_total:.2f}'} |",
        "",
        "| # | layer | output | fcnn fwd ms | fcnn bwd ms | PyTorch fwd ms | PyTorch bwd ms |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for i, r in enumerate(mine):
        t = theirs[i] if theirs is not None else None
        torch_cells = "- | -" if t is None else f"{t['fwd_ms']:.1f} | {t['bwd_ms']:.1f}"
        lines.append(
            f"| {i} | {r['layer']} | {tuple(r['out_shape'])} | {r['fwd_ms']:.1f} | "
            f"{r['bwd_ms']:.1f} | {torch_cells} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="airbench_cifar", choices=models.names())
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    mine, theirs = profile(args.preset, args.batch, args.repeats)
    text = report(args.preset, args.batch, mine, theirs)
    print(text)
    if args.out is not None:
        atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Data-parallel training speed: ``python -m benchmarks.parallel [--procs 1 2] [--epochs E]``.

Runs ``fcnn train CONFIG`` (default ``configs/mnist.yaml``, LeNet-5) once per process
count, each a real run with its own run folder under a temporary directory, and reads
the per-epoch training times (``epoch_time_s`` in ``metrics.csv``, validation excluded)
and the test accuracy (``summary.json``). When PyTorch is importable it also times an
epoch of the config's network on the same MNIST training set (all cores as threads,
batch 128). ``--set key=value`` overrides the config as in ``fcnn train`` (for example
``--set model=bn_net_mnist``). Writes ``<out>/parallel.json`` and ``<out>/parallel.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import torch_side
from fcnn import models
from fcnn.data.mnist import load as load_mnist
from fcnn.data.paths import data_root
from fcnn.io import atomic_write_text
from fcnn.training.config import load_config


def _run(
    config: str, procs: int, epochs: int | None, data_dir: str | None, overrides: list[str]
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fcnn-parallel-") as tmp:
        sets = [*overrides, f"runs_dir={tmp}/runs", f"reports_dir={tmp}/reports", "callbacks=[]"]
        if epochs is not None:
            sets.append(f"train.epochs={epochs}")
        cmd = [sys.executable, "-m", "cli.main", "train", config, "--no-progress"]
        cmd += [a for s in sets for a in ("--set", s)]
        if data_dir:
            cmd += ["--data-dir", data_dir]
        if procs > 1:
            cmd += ["--procs", str(procs)]
        subprocess.run(cmd, check=True)
        (run_dir,) = Path(tmp, "runs").iterdir()
        with open(run_dir / "metrics.csv", newline="") as f:
            times = [float(row["epoch_time_s"]) for row in csv.DictReader(f)]
        summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "procs": procs,
        "epoch_times_s": times,
        "median_epoch_s": statistics.median(times),
        "test_acc": summary["test_acc"],
        "wall_time_s": summary["wall_time_s"],
    }


def _torch_epoch(model: str, data_dir: str | None, repeats: int) -> dict[str, Any] | None:
    if not torch_side.available() or repeats < 1:
        return None
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    train, _ = load_mnist(data_root(data_dir), allow_download=False)
    preset = models.get(model)
    times = [
        torch_side.train_epoch(
            preset.network.spec, preset.input_shape, train.images, train.labels, 128
        )["seconds"]
        for _ in range(repeats)
    ]
    return {"threads": torch.get_num_threads(), "epoch_times_s": times,
            "median_epoch_s": statistics.median(times), "torch": torch.__version__,
            "model": model}  # fmt: skip


def _markdown(results: dict[str, Any]) -> str:
    runs, torch_result = results["runs"], results["torch"]
    base = runs[0]["median_epoch_s"]
    lines = [
        "# Data-parallel training (MPI)",
        "",
        f"`python -m benchmarks.parallel` on {results['cpus']} CPUs: `fcnn train "
        f"{results['config']}` {' '.join('--set ' + o for o in results['overrides'])} per "
        "process count (median epoch = training part only).",
        "",
        "| processes | median epoch s | vs 1 process | vs PyTorch | test accuracy | wall s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        vs_torch = (
            f"{r['median_epoch_s'] / torch_result['median_epoch_s']:.2f}×" if torch_result else "–"
        )
        lines.append(
            f"| {r['procs']} | {r['median_epoch_s']:.2f} | {r['median_epoch_s'] / base:.2f}× | "
            f"{vs_torch} | {r['test_acc']:.4f} | {r['wall_time_s']:.0f} |"
        )
    if torch_result:
        lines += [
            "",
            f"PyTorch {torch_result['torch']} ({torch_result['threads']} threads), "
            f"{torch_result['model']} epoch on MNIST, batch 128: median "
            f"{torch_result['median_epoch_s']:.2f} s of "
            f"{len(torch_result['epoch_times_s'])}.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.parallel", description=__doc__)
    parser.add_argument("--config", default="configs/mnist.yaml")
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="default: the config's")
    parser.add_argument("--data-dir", default=None, help="data root (default: $FCNN_DATA)")
    parser.add_argument("--out", default="reports")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--torch-repeats", type=int, default=3, help="0 skips PyTorch")
    args = parser.parse_args(argv)
    model = load_config(args.config, args.overrides).model
    runs = []
    for procs in args.procs:
        runs.append(_run(args.config, procs, args.epochs, args.data_dir, args.overrides))
        print(json.dumps(runs[-1]), flush=True)
    torch_result = _torch_epoch(model, args.data_dir, args.torch_repeats)
    results = {
        "config": args.config,
        "overrides": args.overrides,
        "cpus": os.cpu_count(),
        "runs": runs,
        "torch": torch_result,
    }
    out = Path(args.out)
    atomic_write_text(out / "parallel.json", json.dumps(results, indent=2))
    text = _markdown(results)
    atomic_write_text(out / "parallel.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""fcnn against PyTorch on the CPU, in one run: ``python -m benchmarks [--quick]``.

Measures, for each network: forward/backward time of every layer at batch 128, a full
training epoch on MNIST (LeNet-5 and the BatchNorm net) in one process and, when MPI is
installed, on one process per CPU (``--procs``, as ``fcnn train --procs`` runs), inference
throughput at batch 1 and 256, and the peak memory of the fcnn part. When PyTorch is importable
(``pip install -e ".[bench]"``) the same networks, built from the same layer specs, run
in the same process (the epochs in a process of their own) and every figure gets its
fcnn/PyTorch ratio. Epoch ratios come from
full epochs measured in this run: ``--epoch-rounds`` rounds (default 3) in which fcnn (one
process, then one per CPU) and PyTorch (a process of its own) run back to back, since this
VM's speed drifts by tens of percent over minutes; inference likewise in
``--inference-rounds`` rounds (default 3) of fcnn then PyTorch. A full run takes about 30
minutes. Results go to ``reports/benchmarks.json`` and ``reports/benchmarks.md``;
``--only inference`` (or ``layers``, ``epochs``) measures just those sections (inference
alone: a few minutes) into ``reports/benchmarks-inference.*``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import epoch, fcnn_side, torch_side
from benchmarks.data import EPOCH_JOBS, epoch_job
from benchmarks.report import markdown
from benchmarks.timing import gemm_peak_gflops, peak_rss_mb
from fcnn import models
from fcnn.data.dataset import Dataset
from fcnn.distributed.launch import find_mpiexec
from fcnn.io import atomic_write_text
from fcnn.runtime import keep_freed_memory
from fcnn.version import __version__

LAYER_NETS = ("lenet_mnist", "tiny_vgg_cifar", "bn_net_mnist")
SECTIONS = ("layers", "epochs", "inference")


def _parallel_procs(requested: int | None) -> tuple[int, str | None]:
    """(processes, mpiexec) for the data-parallel epochs; mpiexec None skips them."""
    if requested is not None and requested < 1:
        raise SystemExit(f"--procs must be at least 1, got {requested}")
    procs = requested or os.cpu_count() or 1
    if procs == 1:
        return 1, None
    mpiexec = find_mpiexec()
    if mpiexec is None or importlib.util.find_spec("mpi4py") is None:
        if requested is not None:
            raise SystemExit(
                "--procs needs mpiexec and mpi4py; install them with: pip install -e ."
            )
        return 1, None
    return procs, mpiexec


def _epoch_rounds(
    name: str,
    preset: models.Preset,
    data: Dataset,
    batch: int,
    args: argparse.Namespace,
    procs: int,
    mpiexec: str | None,
    use_torch: bool,
) -> dict[str, list[dict[str, Any]]]:
    """``args.epoch_rounds`` rounds of full epochs of ``name``, each round fcnn in this
    process, fcnn on ``procs`` MPI processes and PyTorch back to back, so that every ratio
    compares epochs run minutes apart at most (this VM's speed drifts over a run)."""
    runs: dict[str, list[dict[str, Any]]] = {"fcnn": []}
    for r in range(args.epoch_rounds):
        runs["fcnn"].append(fcnn_side.train_epoch(preset, data, batch))
        if mpiexec is not None:
            parallel = epoch.run_fcnn_parallel(mpiexec, procs, name, args.data_dir, args.quick)
            runs.setdefault("fcnn_parallel", []).append(parallel)
        if use_torch:
            runs.setdefault("torch", []).append(epoch.run_torch(name, args.data_dir, args.quick))
        times = ", ".join(f"{k} {v[-1]['seconds']:.2f} s" for k, v in runs.items())
        print(f"epoch {name}, round {r + 1}: {times}", flush=True)
    return runs


INFERENCE_BATCHES = (1, 256)


def _inference_rounds(
    name: str, repeats: int, rounds: int, use_torch: bool
) -> dict[str, list[dict[str, Any]]]:
    """``rounds`` rounds of eval-mode timings of ``name`` at each batch of
    :data:`INFERENCE_BATCHES`, each round fcnn then PyTorch back to back (as the epoch
    rounds, so that a ratio never compares timings minutes apart). Per engine and batch:
    ``{"batch", "ms" (median of the rounds), "images_per_s", "rounds_ms"}``."""
    preset = models.get(name)
    spec, shape = preset.network.spec, preset.input_shape
    times: dict[str, dict[int, list[float]]] = (
        {"fcnn": {}, "torch": {}} if use_torch else {"fcnn": {}}
    )
    for _ in range(rounds):
        for b in INFERENCE_BATCHES:
            times["fcnn"].setdefault(b, []).append(fcnn_side.inference(preset, b, repeats)["ms"])
            if use_torch:
                times["torch"].setdefault(b, []).append(
                    torch_side.inference(spec, shape, b, repeats)["ms"]
                )
    return {
        engine: [_inference_summary(b, per_batch[b]) for b in INFERENCE_BATCHES]
        for engine, per_batch in times.items()
    }


def _inference_summary(batch: int, rounds_ms: list[float]) -> dict[str, Any]:
    ms = statistics.median(rounds_ms)
    return {"batch": batch, "ms": ms, "images_per_s": batch / ms * 1e3, "rounds_ms": rounds_ms}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: a smoke test, not a result"
    )
    parser.add_argument("--out", default="reports", help="folder for benchmarks.json/.md")
    parser.add_argument("--data-dir", default=None, help="data root (default: $FCNN_DATA)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions per figure")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch side")
    parser.add_argument(
        "--epoch-rounds",
        type=int,
        default=3,
        help="rounds of full epochs per network, each fcnn and PyTorch back to back (median)",
    )
    parser.add_argument(
        "--epoch-jobs",
        nargs="+",
        choices=list(EPOCH_JOBS),
        # airbench_cifar (issue #36's network, batch 1,024, ~5 min an epoch a side) on request
        default=[job for job in EPOCH_JOBS if job != "airbench_cifar"],
        help="the networks (and data) whose training epochs are timed (default: all but "
        "airbench_cifar)",
    )
    parser.add_argument(
        "--inference-rounds",
        type=int,
        default=3,
        help="rounds of inference timings per network, each fcnn and PyTorch back to back",
    )
    parser.add_argument(
        "--procs",
        type=int,
        default=None,
        help="also time each epoch on this many MPI processes, as fcnn train --procs does "
        "(default: one per CPU when mpiexec and mpi4py are installed; 1 skips it)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        help="measure only these sections (written to benchmarks-SECTION[-...].json/.md)",
    )
    args = parser.parse_args(argv)
    sections = set(args.only)
    for option in ("epoch_rounds", "inference_rounds"):
        if getattr(args, option) < 1:
            flag = "--" + option.replace("_", "-")
            raise SystemExit(f"{flag} must be at least 1, got {getattr(args, option)}")
    procs, mpiexec = _parallel_procs(args.procs)
    repeats = 2 if args.quick else args.repeats
    args.epoch_rounds = 1 if args.quick else args.epoch_rounds
    args.inference_rounds = 1 if args.quick else args.inference_rounds
    batch = 128
    keep_freed_memory()
    use_torch = torch_side.available() and not args.no_torch
    env: dict[str, Any] = {
        "fcnn": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "gemm_peak_gflops": gemm_peak_gflops(1024 if args.quick else 2048),
        "quick": args.quick,
    }
    if use_torch:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
    print(f"environment: {env}", flush=True)
    results: dict[str, Any] = {"environment": env, "layers": {}, "epochs": {}, "inference": {}}

    if "epochs" in sections:
        env["epoch_data"] = {}
    # ---- fcnn first, so the peak memory is fcnn's alone
    if "layers" in sections:
        for name in LAYER_NETS:
            preset = models.get(name)
            results["layers"][name] = {"fcnn": fcnn_side.per_layer(preset, batch, repeats)}
            print(f"layers {name}: done", flush=True)
    if "epochs" in sections:
        for name in args.epoch_jobs:
            preset, data, source = epoch_job(name, args.quick, args.data_dir)
            env["epoch_data"][name] = f"{source}, batch {batch}"
            results["epochs"][name] = _epoch_rounds(
                name, preset, data, batch, args, procs, mpiexec, use_torch
            )
    if "inference" in sections:  # once here, for the peak memory; timed in rounds below
        for name in LAYER_NETS:
            fcnn_side.inference(models.get(name), max(INFERENCE_BATCHES), 1)
    env["fcnn_peak_rss_mb"] = peak_rss_mb()
    # ---- the same networks' layers in PyTorch
    if use_torch and "layers" in sections:
        for name in LAYER_NETS:
            preset = models.get(name)
            spec, shape = preset.network.spec, preset.input_shape
            results["layers"][name]["torch"] = torch_side.per_layer(spec, shape, batch, repeats)
    # ---- inference: fcnn and PyTorch back to back in each round
    if "inference" in sections:
        for name in LAYER_NETS:
            results["inference"][name] = _inference_rounds(
                name, repeats, args.inference_rounds, use_torch
            )
            print(f"inference {name}: done", flush=True)
    out = Path(args.out)
    measured = [x for x in SECTIONS if x in sections]
    stem = "-".join(["benchmarks", *measured]) if len(measured) < len(SECTIONS) else "benchmarks"
    stem += "-quick" if args.quick else ""
    atomic_write_text(out / f"{stem}.json", json.dumps(results, indent=2))
    text = markdown(results)
    atomic_write_text(out / f"{stem}.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

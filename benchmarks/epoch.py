"""One training epoch in a process of its own, for the interleaved epoch rounds of
``python -m benchmarks``.

``python -m benchmarks.epoch NET --engine torch`` times PyTorch's epoch
(:func:`benchmarks.torch_side.train_epoch`, all cores as threads);
``mpiexec -n N python -m benchmarks.epoch NET`` times fcnn's epoch
(:func:`benchmarks.fcnn_side.train_epoch`: same data, order, batch and optimizer) with every
process computing its shard of each batch, as ``fcnn train --procs N`` does. Rank 0 prints
the result as one JSON line; :func:`run_torch` and :func:`run_fcnn_parallel` start it and
read that line. Running PyTorch in its own process keeps it out of the peak memory measured
for fcnn.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any


def _run(cmd: list[str]) -> dict[str, Any]:
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _args(net: str, data_dir: str | None, quick: bool) -> list[str]:
    return [net, *(["--data-dir", data_dir] if data_dir else []), *(["--quick"] if quick else [])]


def run_torch(net: str, data_dir: str | None, quick: bool) -> dict[str, Any]:
    """PyTorch's epoch of ``net`` in a fresh process: ``{"seconds", "images_per_s", ...}``."""
    cmd = [sys.executable, "-m", "benchmarks.epoch", *_args(net, data_dir, quick)]
    return _run([*cmd, "--engine", "torch"])


def run_fcnn_parallel(
    mpiexec: str, procs: int, net: str, data_dir: str | None, quick: bool
) -> dict[str, Any]:
    """fcnn's epoch of ``net`` on ``procs`` processes of this machine, each with its share
    of the cores as BLAS threads: ``{"seconds", "images_per_s", "mean_loss", "procs"}``."""
    cmd = [mpiexec, "-n", str(procs), sys.executable, "-m", "benchmarks.epoch"]
    return {**_run([*cmd, *_args(net, data_dir, quick)]), "procs": procs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.epoch")
    parser.add_argument("net", help="an epoch job of benchmarks.data.EPOCH_JOBS")
    parser.add_argument("--engine", choices=("fcnn", "torch"), default="fcnn")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    # before NumPy loads its BLAS: under mpiexec each process gets its share of the cores,
    # exactly as in fcnn train --procs
    from fcnn.runtime import pin_blas_threads

    pin_blas_threads()

    from benchmarks import fcnn_side, torch_side
    from benchmarks.data import EPOCH_BATCH, epoch_job

    preset, data, _ = epoch_job(args.net, args.quick, args.data_dir)
    batch = EPOCH_BATCH.get(args.net, 128)
    if args.engine == "torch":
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        spec, shape = preset.network.spec, preset.input_shape
        print(json.dumps(torch_side.train_epoch(spec, shape, data.images, data.labels, batch)))
        return 0
    from fcnn.distributed.mpi import world
    from fcnn.runtime import keep_freed_memory

    keep_freed_memory()  # as the fcnn command does for fcnn train
    replicas = world()
    result = fcnn_side.train_epoch(preset, data, batch, replicas=replicas)
    if replicas.rank == 0:
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

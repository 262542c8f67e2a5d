"""One data-parallel training epoch, for ``python -m benchmarks --procs N``.

``mpiexec -n N python -m benchmarks.parallel_epoch NET [--data-dir D] [--quick]`` runs the
epoch of :func:`benchmarks.fcnn_side.train_epoch` (same data, order, batch and optimizer)
with every process computing its shard of each batch (``fcnn train --procs N``'s scheme);
rank 0 prints the result as one JSON line. :func:`run` starts it and reads that line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def run(mpiexec: str, procs: int, net: str, data_dir: str | None, quick: bool) -> dict[str, Any]:
    """The epoch of ``net`` on ``procs`` processes of this machine (each with its share of
    the cores as BLAS threads): ``{"seconds", "images_per_s", "mean_loss", "procs"}``."""
    threads = max(1, (os.cpu_count() or 1) // procs)
    env = {**os.environ, **dict.fromkeys(BLAS_THREAD_VARIABLES, str(threads))}
    cmd = [mpiexec, "-n", str(procs), sys.executable, "-m", "benchmarks.parallel_epoch", net]
    cmd += (["--data-dir", data_dir] if data_dir else []) + (["--quick"] if quick else [])
    done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "procs": procs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.parallel_epoch")
    parser.add_argument("net")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)

    from benchmarks import fcnn_side
    from benchmarks.__main__ import _mnist
    from fcnn import models
    from fcnn.distributed.mpi import world

    replicas = world()
    mnist, _ = _mnist(args.quick, args.data_dir)
    result = fcnn_side.train_epoch(models.get(args.net), mnist, 128, replicas=replicas)
    if replicas.rank == 0:
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

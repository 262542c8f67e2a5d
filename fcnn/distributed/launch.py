"""``fcnn train --procs N``: the ``mpiexec`` command line that starts N processes here.

Each started process pins its own BLAS threads (``cli`` does it on import, from the
variables mpiexec sets), so the command line carries no thread settings.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

__all__ = ["MIN_SHARD", "auto_procs", "find_mpiexec", "mpi_missing", "mpiexec_command"]

# Fewer images than this per replica and the per-step fixed costs (the gradient sum, one
# optimizer update per process, Python overhead of every layer) outweigh the split.
MIN_SHARD = 32


def find_mpiexec() -> str | None:
    """``mpiexec`` beside this Python (the ``mpich`` wheel, a dependency of fcnn, puts it
    there), else the first on ``PATH``; None when there is none."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("mpiexec")


def auto_procs(batch_size: int, cores: int) -> int:
    """``--procs auto``: one replica per usable core, but none with a shard under
    :data:`MIN_SHARD` images; at least 1."""
    return max(1, min(cores, batch_size // MIN_SHARD))


def mpi_missing() -> str | None:
    """Why data-parallel processes cannot start here (no mpiexec, no mpi4py), or None."""
    if find_mpiexec() is None:
        return "no mpiexec was found (pip install -e . brings one with the mpich package)"
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install -e . brings it)"
    return None


def mpiexec_command(mpiexec: str, procs: int, args: list[str]) -> list[str]:
    """``mpiexec -n procs python -m cli.main <args>``: the same fcnn command in each process."""
    if procs < 1:
        raise ValueError(f"--procs must be at least 1, got {procs}")
    return [mpiexec, "-n", str(procs), sys.executable, "-m", "cli.main", *args]

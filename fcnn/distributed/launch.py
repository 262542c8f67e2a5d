"""``fcnn train --procs N``: the ``mpiexec`` command line that starts N processes here.

Each started process pins its own BLAS threads (``cli`` does it on import, from the
variables mpiexec sets), so the command line carries no thread settings.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

__all__ = ["find_mpiexec", "mpiexec_command"]


def find_mpiexec() -> str | None:
    """``mpiexec`` beside this Python (the ``mpich`` wheel of the ``[mpi]`` extra puts it
    there), else the first on ``PATH``; None when there is none."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("mpiexec")


def mpiexec_command(mpiexec: str, procs: int, args: list[str]) -> list[str]:
    """``mpiexec -n procs python -m cli.main <args>``: the same fcnn command in each process."""
    if procs < 1:
        raise ValueError(f"--procs must be at least 1, got {procs}")
    return [mpiexec, "-n", str(procs), sys.executable, "-m", "cli.main", *args]

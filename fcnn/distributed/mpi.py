"""Replicas over MPI (``mpi4py``), and how to tell we run under it."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from fcnn.distributed.replicas import SINGLE, Replicas

__all__ = ["MPIReplicas", "MPIUnavailable", "launched_by_mpi", "world"]

# Set in every process that mpiexec starts: MPICH / Intel MPI (PMI), Open MPI, PMIx, srun.
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")


class MPIUnavailable(RuntimeError):
    """Started by mpiexec with several processes, but mpi4py cannot be imported."""


def launched_by_mpi(env=os.environ) -> bool:
    """True in a process that ``mpiexec -n N`` (N > 1) started."""
    sizes = [int(env[name]) for name in _SIZE_VARIABLES if env.get(name, "").isdigit()]
    return bool(sizes) and sizes[0] > 1


class MPIReplicas:
    """:class:`~fcnn.distributed.replicas.Replicas` over an mpi4py communicator."""

    def __init__(self, comm: Any):
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    def sum(self, x: np.ndarray) -> np.ndarray:
        from mpi4py import MPI

        send = np.ascontiguousarray(x)
        out = np.empty_like(send)
        self.comm.Allreduce(send, out, op=MPI.SUM)
        return out

    def gather(self, obj: Any) -> list[Any]:
        return self.comm.allgather(obj)

    def broadcast(self, obj: Any) -> Any:
        return self.comm.bcast(obj, root=0)

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int) -> None:
        self.comm.Abort(code)


def world() -> Replicas:
    """The replicas of this run: MPI's world when mpiexec started several processes,
    otherwise the single process. Raises :class:`MPIUnavailable` with the fix when
    mpiexec started us but mpi4py is missing."""
    if not launched_by_mpi():
        return SINGLE
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise MPIUnavailable(
            "this process was started by mpiexec but mpi4py is not installed; install the "
            "MPI support with: pip install -e . (it brings mpi4py)"
        ) from exc
    return MPIReplicas(MPI.COMM_WORLD)

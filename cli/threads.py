"""BLAS thread counts, set before NumPy loads its BLAS (which reads them once, at load time).

A process that ``mpiexec`` started gets its share of the cores, and ``fcnn serve`` one
thread per process, since a server's parallelism comes from concurrent requests and
workers and BLAS threads on top of them oversubscribe the cores (measured with 2 workers
on 2 cores: 24 instead of 136 predictions/s). A thread count the user set is always kept.
Only ``os`` and ``sys`` are imported here, so importing this module never loads NumPy.
"""

import os
import sys

# Set by mpiexec in every process it starts: processes on this machine, and world size.
_LOCAL_PROCS = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE")
_WORLD_PROCS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _procs_on_this_machine(env) -> int:
    for name in _LOCAL_PROCS + _WORLD_PROCS:
        if env.get(name, "").isdigit():
            return int(env[name])
    return 1


def pin_blas_threads(env=os.environ, cores: int | None = None) -> int | None:
    """Under mpiexec, give each process ``cores / processes on this machine`` BLAS
    threads (at least 1), unless the user set a thread count; returns the count set."""
    procs = _procs_on_this_machine(env)
    if procs <= 1 or any(name in env for name in BLAS_THREAD_VARIABLES):
        return None
    threads = max(1, (cores or os.cpu_count() or 1) // procs)
    for name in BLAS_THREAD_VARIABLES:
        env[name] = str(threads)
    return threads


def pin_blas_threads_for_serving(argv=sys.argv, env=os.environ) -> bool:
    """``fcnn serve``: one BLAS thread per process unless the user chose; True if set."""
    if len(argv) < 2 or argv[1] != "serve" or any(n in env for n in BLAS_THREAD_VARIABLES):
        return False
    for name in BLAS_THREAD_VARIABLES:
        env[name] = "1"
    return True

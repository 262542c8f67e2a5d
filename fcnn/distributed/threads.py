"""Batch parallelism on threads of one process, with the BLAS held to one thread meanwhile.

NumPy runs element-wise work (im2col copies, pooling, activations, bias adds) on one core;
only its BLAS uses several. Splitting a batch into contiguous shards that threads of one
process run concurrently uses every core for all of the work, since NumPy releases the GIL
inside its loops. The BLAS must then run single-threaded, or its threads and ours
oversubscribe the cores (on this project's 2-core machine shards on a one-thread BLAS beat
both one thread on a two-thread BLAS and shards on a two-thread BLAS; docs/benchmarks.md
has the command and the figures).

:func:`default_workers` is the BLAS's own thread count, so a process that was given one
core's worth of BLAS (an MPI rank, a ``fcnn serve`` worker, ``OPENBLAS_NUM_THREADS=1``) runs
unsplit. The BLAS is found and limited through ``threadpoolctl``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import numpy as np
from threadpoolctl import ThreadpoolController

from fcnn.distributed.sharding import shard_slice

__all__ = ["MIN_SHARD", "default_workers", "limit_blas_threads", "map_shards", "one_blas_thread"]

MIN_SHARD = 16  # images per shard below which splitting costs more than it saves

T = TypeVar("T")

_lock = threading.Lock()
_controller: ThreadpoolController | None = None
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def _blas() -> ThreadpoolController:
    global _controller
    with _lock:
        if _controller is None:
            _controller = ThreadpoolController()
        return _controller


def default_workers() -> int:
    """The number of threads the BLAS was given (at least 1): fcnn's share of the cores."""
    counts = [lib.num_threads for lib in _blas().select(user_api="blas").lib_controllers]
    return max([1, *counts])


def limit_blas_threads(threads: int) -> None:
    """From now on, every BLAS of the process runs on at most ``threads`` threads (it has
    loaded already, so its thread variables no longer count)."""
    _blas().limit(limits=max(1, threads), user_api="blas")


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Within the block every BLAS call of the process runs on one thread."""
    with _blas().limit(limits=1, user_api="blas"):
        yield


def _executor(size: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < size:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool, _pool_size = ThreadPoolExecutor(size, thread_name_prefix="fcnn-shard"), size
        return _pool


def map_shards(
    fn: Callable[[np.ndarray], T], x: np.ndarray, workers: int, min_rows: int = MIN_SHARD
) -> list[T]:
    """``fn`` of each of ``workers`` contiguous shards of ``x`` along axis 0, in order.

    The shards run concurrently on threads (the BLAS on one thread meanwhile); fewer shards
    are used when a shard would hold less than ``min_rows`` rows (at least
    :data:`MIN_SHARD`), and with one shard
    ``fn(x)`` runs in the caller's thread. ``fn`` must not mutate shared state. The BLAS
    limit is process-wide: callers that run ``map_shards`` from several threads at once
    should pass ``workers=1`` (as ``fcnn serve`` does through its one-thread BLAS).
    """
    shards = max(1, min(workers, x.shape[0] // max(min_rows, MIN_SHARD)))
    if shards == 1:
        return [fn(x)]
    parts = [x[shard_slice(x.shape[0], rank, shards)] for rank in range(shards)]
    with one_blas_thread():
        return list(_executor(shards).map(fn, parts))

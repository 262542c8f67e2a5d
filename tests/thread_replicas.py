"""Replicas as threads of one process, for testing data-parallel code without MPI.

Every collective is an exchange: each thread puts its value in its slot, waits
for the others, reads all the slots, and waits again before the slots are reused.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from fcnn.distributed.sharding import shard_slice
from fcnn.layers import batchnorm


class _Group:
    def __init__(self, size: int):
        self.size = size
        self.barrier = threading.Barrier(size, timeout=60)
        self.slots: list[Any] = [None] * size


class ThreadReplica:
    def __init__(self, group: _Group, rank: int):
        self.group, self.rank, self.size = group, rank, group.size

    def _exchange(self, obj: Any) -> list[Any]:
        self.group.slots[self.rank] = obj
        self.group.barrier.wait()
        everything = list(self.group.slots)
        self.group.barrier.wait()
        return everything

    def sum(self, x: np.ndarray) -> np.ndarray:
        parts = self._exchange(np.asarray(x))
        total = parts[0].copy()
        for part in parts[1:]:  # rank order: every replica gets bit-identical sums
            total += part
        return total

    def gather(self, obj: Any) -> list[Any]:
        return self._exchange(obj)

    def broadcast(self, obj: Any) -> Any:
        return self._exchange(obj)[0]

    def barrier(self) -> None:
        self.group.barrier.wait()

    def abort(self, code: int) -> None:
        self.group.barrier.abort()
        raise SystemExit(code)


def run_replicas(size: int, fn: Callable[[ThreadReplica], Any]) -> list[Any]:
    """``fn(replica)`` in ``size`` threads; their results in rank order (errors re-raised)."""
    group = _Group(size)
    results: list[Any] = [None] * size
    errors: list[BaseException] = []

    def work(rank: int) -> None:
        try:
            results[rank] = fn(ThreadReplica(group, rank))
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)
            group.barrier.abort()

    threads = [threading.Thread(target=work, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def assert_synchronized_shards_equal_the_whole(
    step: Callable[[np.ndarray, np.ndarray], tuple], x: np.ndarray, dy: np.ndarray, size: int = 3
) -> None:
    """``step(x, dy) -> (y, dx, BatchNorm params gradient, BatchNorm state)`` run by ``size``
    replicas, each on its contiguous shard with synchronized BatchNorm, gives the whole
    batch's ``y`` and ``dx``, its params gradient once summed over the replicas, and its
    running statistics in every replica (float64: 1e-10 and 1e-9)."""
    y, dx, grads, state = step(x, dy)

    def shard(replica):
        part = shard_slice(x.shape[0], replica.rank, replica.size)
        with batchnorm.cross_replica_sum(replica.sum):
            return step(x[part], dy[part])

    parts = run_replicas(size, shard)
    np.testing.assert_allclose(np.concatenate([p[0] for p in parts]), y, rtol=1e-10)
    np.testing.assert_allclose(np.concatenate([p[1] for p in parts]), dx, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sum(p[2].gamma for p in parts), grads.gamma, rtol=1e-10)
    np.testing.assert_allclose(sum(p[2].beta for p in parts), grads.beta, rtol=1e-10)
    for p in parts:
        np.testing.assert_allclose(p[3].var, state.var, rtol=1e-10)

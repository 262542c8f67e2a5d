"""The replicas of a data-parallel run, as the training loop sees them.

The loop needs five collective operations and never imports MPI itself; a
:class:`Replicas` supplies them. :data:`SINGLE` is the one-process run, where
every operation is the identity; :func:`fcnn.distributed.mpi.mpi_replicas`
implements them over MPI; the tests implement them over threads.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

__all__ = ["SINGLE", "Replicas", "SingleReplica"]


class Replicas(Protocol):
    """This process's place among ``size`` replicas and the collectives between them.

    Every replica must call the collectives in the same order (they block until
    all have arrived).
    """

    rank: int
    size: int

    def sum(self, x: np.ndarray) -> np.ndarray:
        """The element-wise sum of every replica's ``x`` (same shape and dtype everywhere)."""
        ...

    def gather(self, obj: Any) -> list[Any]:
        """Every replica's ``obj``, in rank order, on every replica."""
        ...

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every replica."""
        ...

    def barrier(self) -> None:
        """Wait until every replica has arrived here."""
        ...

    def abort(self, code: int) -> None:
        """Stop every replica now (after an error on one of them)."""
        ...


class SingleReplica:
    """The one-process run: rank 0 of 1, every collective the identity."""

    rank = 0
    size = 1

    def sum(self, x: np.ndarray) -> np.ndarray:
        return x

    def gather(self, obj: Any) -> list[Any]:
        return [obj]

    def broadcast(self, obj: Any) -> Any:
        return obj

    def barrier(self) -> None:
        return None

    def abort(self, code: int) -> None:
        raise SystemExit(code)


SINGLE: Replicas = SingleReplica()

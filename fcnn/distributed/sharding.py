"""Which contiguous part of a batch each replica takes."""

from __future__ import annotations

__all__ = ["shard_slice"]


def shard_slice(n: int, rank: int, size: int) -> slice:
    """The part of ``n`` items that replica ``rank`` of ``size`` takes.

    The parts are contiguous, disjoint, cover ``0..n-1`` in order, and differ in
    length by at most one (the first ``n % size`` replicas take one more), as
    ``numpy.array_split`` cuts. A replica may get an empty part when ``n < size``.
    """
    if size < 1:
        raise ValueError(f"the number of replicas must be positive, got {size}")
    if not 0 <= rank < size:
        raise ValueError(f"rank {rank} is outside 0..{size - 1}")
    if n < 0:
        raise ValueError(f"cannot shard a negative number of items ({n})")
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))

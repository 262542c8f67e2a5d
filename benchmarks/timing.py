"""Timing helpers: median of repetitions after warm-up, GEMM peak, peak memory."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable, Mapping

import numpy as np


def median_time(
    fn: Callable[[], object], repeats: int = 5, warmup: int = 1, warmup_s: float = 0.5
) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs, after at least
    ``warmup`` runs and ``warmup_s`` seconds of them (after a heavy workload the first
    ~0.2 s of a small one run 2-3x slower here; a steady state is what is compared)."""
    start = time.perf_counter()
    done = 0
    while done < warmup or time.perf_counter() - start < warmup_s:
        fn()
        done += 1
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def gemm_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """float32 GEMM throughput of this machine's BLAS (square n×n), in GFLOP/s."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    seconds = median_time(lambda: a @ a, repeats)
    return 2 * n**3 / seconds / 1e9


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def interleaved_ms(
    runs: Mapping[str, Callable[[], object]],
    rounds: int,
    warmup: bool = False,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Time of each run on ``clock``, the runs interleaved ``rounds`` times (after one
    untimed call of each with ``warmup``), so that a drift of the machine's speed hits them
    alike; medians in ms."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    if warmup:
        for run in runs.values():
            run()
    for _ in range(rounds):
        for name, run in runs.items():
            t0 = clock()
            run()
            times[name].append(clock() - t0)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def interleaved_cpu_ms(
    runs: Mapping[str, Callable[[], object]], rounds: int, warmup: bool = False
) -> dict[str, float]:
    """:func:`interleaved_ms` in CPU time of this process (one-thread kernels, where the
    wall clock would also count other programs' time slices)."""
    return interleaved_ms(runs, rounds, warmup, clock=time.process_time)

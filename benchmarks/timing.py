"""Timing helpers: median of repetitions after warm-up, GEMM peak, peak memory."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable

import numpy as np


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
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

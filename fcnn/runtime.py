"""Process-level performance settings: BLAS threads and the allocator.

Only the standard library is imported here, and importing the fcnn package loads nothing
else, so a program can call :func:`pin_blas_threads` before anything imports NumPy (whose
BLAS reads its thread count once, when it loads).

**BLAS threads.** A process that ``mpiexec`` started gets its share of the cores, and
``fcnn serve`` one thread per process, since a server's parallelism comes from concurrent
requests and workers, and BLAS threads on top of them oversubscribe the cores (docs/how-to/serve.md
gives the serving figures). A thread count the user set is always kept. "Usable
cores" are the CPUs this process may run on (``os.sched_getaffinity``), capped by a cgroup
CPU quota (a container's ``--cpus``), not ``os.cpu_count()``: a process pinned to one core
of a 64-core host that starts 64 BLAS threads runs them all on that core.

**Other programs.** :func:`busy_cores` measures how much of this process's CPUs other
programs keep busy (``/proc/stat`` over a fifth of a second), and :func:`cores_taken` turns it
into a count of cores (or reads ``FCNN_BUSY_CORES``): ``fcnn train --procs auto`` leaves those
cores out, since a synchronous data-parallel step waits for its slowest process.

**Memory.** NumPy allocates a fresh array for most results. With glibc's defaults every
large array is an ``mmap`` that is returned to the kernel when freed, so the next step
faults in zeroed pages all over again, which makes conv layers markedly slower.
:func:`keep_freed_memory` asks glibc to serve large blocks from its heap and to keep freed
memory for reuse. It is called by the ``fcnn`` command; library users can call it
themselves. A server wants a large upload's memory back once the request is done. glibc
raises its mmap threshold each time a large block is freed, so later large blocks come
from per-thread heaps that keep their free pages; :func:`release_free_memory` hands those
pages back (``malloc_trim``). The server calls it after a large decode only: forcing every
large block to be an ``mmap`` instead (a fixed threshold) made every prediction slower,
from page faults on the conv layers' buffers. Elsewhere (musl, macOS, Windows) these
functions do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = [
    "BLAS_THREAD_VARIABLES",
    "BUSY_CORES_VARIABLE",
    "busy_cores",
    "cgroup_cpu_quota",
    "cores_taken",
    "keep_freed_memory",
    "pin_blas_threads",
    "pin_blas_threads_for_serving",
    "release_free_memory",
    "usable_cores",
]

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_applied = False


def _libc_function(name: str, argtypes: list) -> Any:
    """A glibc function through ctypes, or None where there is no such function."""
    libc = ctypes.util.find_library("c")
    if libc is None:
        return None
    try:
        function = getattr(ctypes.CDLL(libc), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = argtypes
    function.restype = ctypes.c_int
    return function


def keep_freed_memory() -> bool:
    """Tune glibc malloc to reuse freed memory; returns True when the settings took effect."""
    global _applied
    if _applied:
        return True
    mallopt = _libc_function("mallopt", [ctypes.c_int, ctypes.c_int])
    if mallopt is None:
        return False
    _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _applied


def release_free_memory() -> bool:
    """Give the free pages of every malloc heap back to the kernel (glibc ``malloc_trim``);
    True when some memory was released. Costs a walk over the heaps: call it after freeing
    something large, not on every request."""
    malloc_trim = _libc_function("malloc_trim", [ctypes.c_size_t])
    return bool(malloc_trim(0)) if malloc_trim is not None else False


# ----------------------------------------------------------------------------- BLAS threads


# Set by mpiexec in every process it starts: processes on this machine, and world size.
_LOCAL_PROCS = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE")
_WORLD_PROCS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _procs_on_this_machine(env) -> int:
    for name in _LOCAL_PROCS + _WORLD_PROCS:
        if env.get(name, "").isdigit():
            return int(env[name])
    return 1


def _cgroup_v2_quota(root: Path, path: str) -> float | None:
    """The tightest ``cpu.max`` quota (in CPUs) from the process's cgroup up to the root."""
    quotas = []
    here = root / path.lstrip("/")
    while True:
        try:
            limit, period = (here / "cpu.max").read_text().split()[:2]
            if limit != "max":
                quotas.append(int(limit) / int(period))
        except (OSError, ValueError):
            pass
        if here == root or root not in here.parents:
            break
        here = here.parent
    return min(quotas, default=None)


def _cgroup_v1_quota(root: Path, path: str) -> float | None:
    """``cpu.cfs_quota_us / cpu.cfs_period_us`` of the cpu controller's cgroup, or None."""
    for mount in (root / "cpu", root / "cpu,cpuacct"):
        folder = mount / path.lstrip("/")
        try:
            quota = int((folder / "cpu.cfs_quota_us").read_text())
            period = int((folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return quota / period if quota > 0 and period > 0 else None
    return None


def cgroup_cpu_quota(
    root: Path = Path("/sys/fs/cgroup"), proc_self: Path = Path("/proc/self")
) -> float | None:
    """The CPU quota of this process's cgroups in CPUs (1.5 for ``--cpus 1.5``), or None.

    Reads both hierarchies (a hybrid host mounts v1's cpu controller beside v2) and takes
    the tighter quota.
    """
    try:
        lines = (proc_self / "cgroup").read_text().splitlines()
    except OSError:
        lines = []
    quotas = []
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and not controllers:
            quotas.append(_cgroup_v2_quota(root, path))
        elif "cpu" in controllers.split(","):
            quotas.append(_cgroup_v1_quota(root, path))
    if not lines:
        quotas.append(_cgroup_v2_quota(root, "/"))
    return min((q for q in quotas if q is not None), default=None)


def usable_cores(root: Path = Path("/sys/fs/cgroup"), proc_self: Path = Path("/proc/self")) -> int:
    """CPUs this process may run on, capped by its cgroup CPU quota (rounded down: a
    quota of 1.5 CPUs keeps one busy thread unthrottled, not two); at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota(root, proc_self)
    if quota is not None:
        cores = min(cores, math.floor(quota))
    return max(1, cores)


# ----------------------------------------------------------------------------- other programs

# Set to a number to say how many cores other programs hold instead of measuring it (0:
# ignore them), for a reproducible process count or where /proc/stat misleads.
BUSY_CORES_VARIABLE = "FCNN_BUSY_CORES"


def _cpu_jiffies(stat: Path) -> dict[int, tuple[int, int]]:
    """``{cpu: (busy, total)}`` clock ticks since boot from a ``/proc/stat``; {} if unreadable."""
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return {}
    ticks = {}
    for line in lines:
        name, *fields = line.split()
        if not (name.startswith("cpu") and name[3:].isdigit()) or len(fields) < 5:
            continue
        values = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
        idle = values[3] + values[4]
        ticks[int(name[3:])] = (sum(values) - idle, sum(values))
    return ticks


def busy_cores(
    cpus: set[int] | None = None, seconds: float = 0.2, stat: Path = Path("/proc/stat")
) -> float:
    """How many of ``cpus`` (default: those this process may run on) were busy over the next
    ``seconds``, as a sum of busy shares (1.0: one core's worth), 0.0 where ``/proc/stat``
    cannot be read. This process sleeps meanwhile, so what it measures is other programs'
    work (and a hypervisor's steal)."""
    if cpus is None:
        try:
            cpus = set(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            return 0.0
    before = _cpu_jiffies(stat)
    time.sleep(seconds)
    after = _cpu_jiffies(stat)
    share = 0.0
    for cpu in cpus & before.keys() & after.keys():
        busy, total = (a - b for a, b in zip(after[cpu], before[cpu], strict=True))
        share += busy / total if total > 0 else 0.0
    return share


def cores_taken(cores: int, env=os.environ, measure=busy_cores) -> int:
    """How many of this process's ``cores`` other programs hold right now: the busy shares
    rounded (a core counts once other programs use half of it), or the count in
    :data:`BUSY_CORES_VARIABLE` when set; at most ``cores - 1``, 0 on a single core."""
    if cores <= 1:
        return 0
    value = env.get(BUSY_CORES_VARIABLE, "").strip()
    taken = int(value) if value.isdigit() else round(measure())
    return max(0, min(cores - 1, taken))


def pin_blas_threads(env=os.environ, cores: int | None = None) -> int | None:
    """Give each process ``usable cores / processes on this machine`` BLAS threads (at
    least 1) under mpiexec, or the usable cores in a lone process that may not use every
    CPU of the machine; never when the user set a thread count. Returns the count set."""
    if any(name in env for name in BLAS_THREAD_VARIABLES):
        return None
    procs = _procs_on_this_machine(env)
    cores = cores or usable_cores()
    if procs <= 1 and cores >= (os.cpu_count() or 1):
        return None  # the BLAS's own default (one thread per CPU) is right
    threads = max(1, cores // procs)
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

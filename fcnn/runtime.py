"""Process-level performance settings for long-running fcnn processes (training, serving).

NumPy allocates a fresh array for most results. With glibc's defaults every large
array is an ``mmap`` that is returned to the kernel when freed, so the next step
faults in zeroed pages all over again; on the conv layers of a VGG that costs
1.5–2× in time. :func:`keep_freed_memory` asks glibc to serve large blocks from
its heap and to keep freed memory for reuse. It is called by the ``fcnn`` command;
library users can call it themselves.

A server wants the opposite: a large upload's memory back once the request is done.
glibc's default raises its mmap threshold each time a large block is freed, so later
large blocks come from per-thread heaps that keep them; :func:`return_freed_memory` fixes
the threshold, so every large block is an ``mmap`` that goes back to the kernel on free.
Elsewhere (musl, macOS, Windows) both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["keep_freed_memory", "return_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_applied = False
_SERVER_MMAP_THRESHOLD = 1 << 20  # blocks of 1 MB and more: mapped, and unmapped on free


def _mallopt():
    """glibc's ``mallopt`` through ctypes, or None where there is no glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt


def keep_freed_memory() -> bool:
    """Tune glibc malloc to reuse freed memory; returns True when the settings took effect."""
    global _applied
    if _applied:
        return True
    mallopt = _mallopt()
    if mallopt is None:
        return False
    _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _applied


def return_freed_memory() -> bool:
    """Tune glibc malloc so large freed blocks go back to the kernel at once (servers);
    returns True when the settings took effect. Not to be combined with
    :func:`keep_freed_memory` in one process."""
    mallopt = _mallopt()
    if mallopt is None or _applied:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _SERVER_MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _SERVER_MMAP_THRESHOLD)
    )

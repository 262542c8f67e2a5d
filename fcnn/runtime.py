"""Process-level performance settings for long-running fcnn processes (training, serving).

NumPy allocates a fresh array for most results. With glibc's defaults every large
array is an ``mmap`` that is returned to the kernel when freed, so the next step
faults in zeroed pages all over again; on the conv layers of a VGG that costs
1.5–2× in time. :func:`keep_freed_memory` asks glibc to serve large blocks from
its heap and to keep freed memory for reuse. It is called by the ``fcnn`` command;
library users can call it themselves. Elsewhere (musl, macOS, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_applied = False


def keep_freed_memory() -> bool:
    """Tune glibc malloc to reuse freed memory; returns True when the settings took effect."""
    global _applied
    if _applied:
        return True
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _applied

"""Process-level performance settings for long-running fcnn processes (training, serving).

NumPy allocates a fresh array for most results. With glibc's defaults every large
array is an ``mmap`` that is returned to the kernel when freed, so the next step
faults in zeroed pages all over again; on the conv layers of a VGG that costs
1.5–2× in time. :func:`keep_freed_memory` asks glibc to serve large blocks from
its heap and to keep freed memory for reuse. It is called by the ``fcnn`` command;
library users can call it themselves.

A server wants a large upload's memory back once the request is done. glibc raises its
mmap threshold each time a large block is freed, so later large blocks come from
per-thread heaps that keep their free pages; :func:`release_free_memory` hands those
pages back (``malloc_trim``). The server calls it after a large decode only: forcing every
large block to be an ``mmap`` instead (a fixed threshold) made each prediction 1.3-1.4×
slower, from page faults on the conv layers' buffers. Elsewhere (musl, macOS, Windows)
these functions do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["keep_freed_memory", "release_free_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_applied = False


def _libc_function(name: str, argtypes: list) -> ctypes._CFuncPtr | None:
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

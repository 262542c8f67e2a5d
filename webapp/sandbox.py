"""Uploaded images are decoded in a small pool of pre-started decoder processes, bounded from
the outside: whatever a codec can be made to do, the operating system stops it.

Every codec can be made to spin (a JPEG that repeats its scans) or to balloon (a progressive
JPEG's full-resolution coefficients, libwebp's canvases) past what its own limits and
:func:`webapp.images.read_image`'s estimates foresee. So each decoder is a process of its own:

- forked from multiprocessing's fork server (a clean process with Pillow and NumPy loaded,
  none of the web server's threads or sockets), one BLAS thread;
- under ``RLIMIT_AS``: its size when it started plus ``memory_mb``, so an allocation past
  that fails inside it (``MemoryError``) and the web worker never holds the codec's memory;
- with ``cpu_s`` seconds of CPU time per image: the waiting request's thread reads the
  decoder's CPU time from ``/proc`` every 50 ms and ends it past that; behind it, as a
  backstop, ``RLIMIT_CPU`` (whole seconds: its soft limit is set before each image to
  ``cpu_s`` past the CPU time used, rounded up, plus one), which the kernel enforces with
  SIGXCPU (``RLIMIT_CORE`` 0: no core file);
- sending back only the model-sized pixels (or the :class:`~webapp.images.ImageProblem`).

A request's thread takes an idle decoder (waiting, at most until the request's deadline, for
one to be free: 503), hands it the bytes and waits until the deadline. A decoder that runs out
of memory or CPU time is replaced and the request gets 413; one still working at the deadline
is killed and replaced, and the request gets 503. The other decoders go on serving.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import resource
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from webapp.images import DecodeBudget, ImageProblem, read_image

__all__ = ["DecoderPool"]

log = logging.getLogger("dermascan")

_BUSY = "The server is busy. Please try again in a moment."
_TOO_COSTLY = (
    "The image needs more {what} to decode than this server allows for one photo. Save it "
    "again as an ordinary JPEG or PNG (for example 3000×3000) and try again."
)


def _address_space() -> int:
    """This process's virtual size in bytes (``VmSize``)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _serve(conn: Connection, memory_bytes: int, cpu_s: float, max_pixels: int) -> None:
    """A decoder process: limits first, then one job at a time until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's Ctrl-C is the server's
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    limit = _address_space() + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    budget = DecodeBudget(memory_bytes, wait_s=0.0)  # one job at a time: never waits
    while True:
        try:
            data, size, channels = conn.recv()
        except (EOFError, OSError):
            return
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(usage.ru_utime + usage.ru_stime + cpu_s) + 1  # whole seconds
        resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))
        try:
            reply: tuple[Any, ...] = (
                "pixels",
                read_image(data, size, channels, max_pixels=max_pixels, budget=budget),
            )
        except ImageProblem as problem:
            reply = ("problem", problem.status, problem.detail)
        except MemoryError:
            # answered, then this process ends: its heap may stay as large as the attempt
            conn.send(("retire", 413, _TOO_COSTLY.format(what="memory")))
            return
        del data
        conn.send(reply)


_TICKS = os.sysconf("SC_CLK_TCK")
_POLL_S = 0.05


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (``/proc/<pid>/stat``); 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15)


class _Decoder:
    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection):
        self.process, self.conn = process, conn

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class DecoderPool:
    """``workers`` decoder processes, each under ``memory_mb`` of memory (beyond its own
    size) and ``cpu_s`` seconds of CPU time per image; see the module docstring."""

    def __init__(self, workers: int, memory_mb: float, cpu_s: float, max_pixels: int):
        if workers < 1 or memory_mb <= 0 or cpu_s <= 0:
            raise ValueError("a decoder pool needs workers >= 1 and positive limits")
        self.memory_bytes = int(memory_mb * 2**20)
        self.cpu_s, self.max_pixels = cpu_s, max_pixels
        # forkserver: decoders fork from a clean, single-threaded process that has Pillow and
        # NumPy loaded, never from the web worker (threads, sockets, the model)
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["webapp.sandbox"])
        self._idle: queue.Queue[_Decoder] = queue.Queue()
        self._all: set[_Decoder] = set()
        self._lock = threading.Lock()
        self._closed = False
        blas = {v: os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
        os.environ.update(dict.fromkeys(blas, "1"))  # the fork server starts with these
        try:
            for _ in range(workers):
                self._idle.put(self._start())
        finally:
            for name, value in blas.items():
                os.environ.pop(name) if value is None else os.environ.update({name: value})

    @property
    def pids(self) -> list[int]:
        """The decoder processes' ids (for measuring their memory)."""
        with self._lock:
            return [d.process.pid for d in self._all if d.process.pid is not None]

    def _start(self) -> _Decoder:
        mine, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_serve,
            args=(theirs, self.memory_bytes, self.cpu_s, self.max_pixels),
            daemon=True,
            name="dermascan-decoder",
        )
        process.start()
        theirs.close()
        decoder = _Decoder(process, mine)
        with self._lock:
            self._all.add(decoder)
        return decoder

    def _replace(self, decoder: _Decoder) -> None:
        decoder.kill()
        with self._lock:
            self._all.discard(decoder)
            closed = self._closed
        if not closed:
            self._idle.put(self._start())

    def read(
        self, data: bytes, size: tuple[int, int], channels: int, deadline: float
    ) -> np.ndarray:
        """The model's uint8 (C, H, W) pixels of ``data``, decoded in a decoder process;
        :class:`ImageProblem` for an unusable photo, one too costly to decode (413), or no
        answer by ``deadline`` (a :func:`time.monotonic` time; 503)."""
        try:
            decoder = self._idle.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise ImageProblem(503, _BUSY) from None
        healthy = False
        try:
            pid = decoder.process.pid
            start = _cpu_seconds(pid)
            decoder.conn.send((data, tuple(size), channels))
            while not decoder.conn.poll(min(_POLL_S, max(0.0, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    log.info("decoder %s stopped at the request's deadline", pid)
                    raise ImageProblem(503, _BUSY)
                if _cpu_seconds(pid) - start > self.cpu_s:
                    log.info("decoder %s stopped at its CPU-time limit", pid)
                    raise ImageProblem(413, _TOO_COSTLY.format(what="time"))
            reply = decoder.conn.recv()
            healthy = reply[0] != "retire"
        except (EOFError, OSError):  # the decoder died: out of CPU time or memory
            decoder.process.join(timeout=5)
            code = decoder.process.exitcode
            what = "time" if code == -signal.SIGXCPU else "memory"
            log.info("decoder %s ended (exit %s) on an upload", decoder.process.pid, code)
            raise ImageProblem(413, _TOO_COSTLY.format(what=what)) from None
        finally:
            if healthy:
                self._idle.put(decoder)
            else:
                self._replace(decoder)
        if reply[0] == "pixels":
            return reply[1]
        raise ImageProblem(reply[1], reply[2])

    def close(self) -> None:
        """End every decoder (idle or not); reads after this fail with 503."""
        with self._lock:
            self._closed = True
            decoders = list(self._all)
            self._all.clear()
        for decoder in decoders:
            decoder.kill()

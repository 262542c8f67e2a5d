"""Uploaded images are decoded in a small pool of pre-started decoder processes, bounded from
the outside: whatever a codec can be made to do, the operating system stops it.

Every codec can be made to spin (a JPEG that repeats its scans) or to balloon (a progressive
JPEG's full-resolution coefficients, libwebp's canvases) past what its own limits and
:func:`webapp.images.read_image`'s estimates foresee. So each decoder is a process of its own:

- started as ``python -m webapp.sandbox`` (a new interpreter: none of the web worker's
  threads, sockets, model or memory), which imports only Pillow, NumPy and
  :mod:`webapp.images`, with one BLAS thread;
- under ``RLIMIT_AS``: its size once started plus ``memory_mb``, so an allocation past that
  fails inside it and the web worker never holds the codec's memory;
- with ``cpu_s`` seconds of CPU time per image: the waiting request's thread reads the
  decoder's CPU time from ``/proc`` every 50 ms and ends it past that; behind it, as a
  backstop, ``RLIMIT_CPU`` (whole seconds: its soft limit is set before each image to
  ``cpu_s`` past the CPU time used, rounded up, plus one), which the kernel enforces with
  SIGXCPU (``RLIMIT_CORE`` 0: no core file);
- answering over a pipe with length-framed bytes, never a pickle: a header the parent checks
  (JSON, a few hundred bytes at most) and the model-sized pixels, whose length the parent
  fixes in advance. A decoder that a hostile file took over could send nothing the web
  worker would run.

A request's thread takes an idle decoder (waiting, at most until the request's deadline, for
one to be free: 503), hands it the bytes and waits until the deadline. A decoder that runs out
of memory or CPU time is replaced and the request gets 413; one still working at the deadline
is killed and replaced, and the request gets 503. The other decoders go on serving.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import resource
import signal
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection

import numpy as np

from webapp.images import DecodeBudget, ImageProblem, read_image

__all__ = ["DecoderPool"]

log = logging.getLogger("dermascan")

_BUSY = "The server is busy. Please try again in a moment."
_UNREADABLE = "The photo could not be read. Try another photo, or save this one again."
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


_HEADER_BYTES = 4096  # the longest header either side accepts
_STATUSES = (400, 413, 415)  # what a decoder may answer besides pixels


def _send(conn: Connection, header: dict, payload: bytes = b"") -> None:
    conn.send_bytes(json.dumps(header).encode())
    conn.send_bytes(payload)


def serve(conn_in: Connection, conn_out: Connection, memory_bytes: int, cpu_s: float,
          max_pixels: int) -> None:  # fmt: skip
    """A decoder process: limits first, then one image at a time until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's Ctrl-C is the server's
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    limit = _address_space() + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    budget = DecodeBudget(memory_bytes, wait_s=0.0)  # one image at a time: never waits
    while True:
        try:
            job = json.loads(conn_in.recv_bytes(_HEADER_BYTES))
            data = conn_in.recv_bytes()
        except (EOFError, OSError):
            return
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(usage.ru_utime + usage.ru_stime + cpu_s) + 1  # whole seconds
        resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))
        try:
            size, channels = (int(job["height"]), int(job["width"])), int(job["channels"])
            pixels = read_image(data, size, channels, max_pixels=max_pixels, budget=budget)
            _send(conn_out, {"ok": True}, pixels.tobytes())
        except ImageProblem as problem:
            _send(conn_out, {"ok": False, "status": problem.status, "detail": problem.detail})
        except MemoryError:
            # answered, then this process ends: its heap may stay as large as the attempt
            _send(conn_out, {"ok": False, "status": 413, "detail": "", "memory": True})
            return


def main() -> None:
    """``python -m webapp.sandbox FD_IN FD_OUT MEMORY_BYTES CPU_S MAX_PIXELS``: a decoder."""
    fd_in, fd_out, memory_bytes, cpu_s, max_pixels = sys.argv[1:6]
    serve(
        Connection(int(fd_in), writable=False),
        Connection(int(fd_out), readable=False),
        int(memory_bytes),
        float(cpu_s),
        int(max_pixels),
    )


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


def _pixels(header: dict, payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """The decoder's reply as pixels of ``shape``, or the :class:`ImageProblem` it reports;
    ValueError for anything else (the header and lengths are checked, never trusted)."""
    if header.get("ok") is True:
        if len(payload) != shape[0] * shape[1] * shape[2]:
            raise ValueError("pixels of the wrong length")
        return np.frombuffer(payload, np.uint8).reshape(shape).copy()  # (C*H*W,) -> (C, H, W)
    if header.get("memory") is True:
        raise ImageProblem(413, _TOO_COSTLY.format(what="memory"))
    status, detail = header["status"], header["detail"]
    if status not in _STATUSES or not isinstance(detail, str) or not detail.isprintable():
        raise ValueError("a status or detail a decoder does not write")
    raise ImageProblem(status, detail[:500])


class _Decoder:
    def __init__(self, process: subprocess.Popen, to_it: Connection, from_it: Connection):
        self.process, self.to_it, self.from_it = process, to_it, from_it

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("decoder %s did not end within 5 s of SIGKILL", self.pid)
        self.to_it.close()
        self.from_it.close()


class DecoderPool:
    """``workers`` decoder processes, each under ``memory_mb`` of memory (beyond its own
    size) and ``cpu_s`` seconds of CPU time per image; see the module docstring."""

    def __init__(self, workers: int, memory_mb: float, cpu_s: float, max_pixels: int):
        if workers < 1 or memory_mb <= 0 or cpu_s <= 0:
            raise ValueError("a decoder pool needs workers >= 1 and positive limits")
        self.memory_bytes = int(memory_mb * 2**20)
        self.cpu_s, self.max_pixels = cpu_s, max_pixels
        self._idle: queue.Queue[_Decoder] = queue.Queue()
        self._all: set[_Decoder] = set()
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(workers):
            self._idle.put(self._start())

    @property
    def pids(self) -> list[int]:
        """The decoder processes' ids (for measuring their memory)."""
        with self._lock:
            return [d.pid for d in self._all]

    def _start(self) -> _Decoder:
        job_r, job_w = os.pipe()
        reply_r, reply_w = os.pipe()
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        args = [job_r, reply_w, self.memory_bytes, self.cpu_s, self.max_pixels]
        process = subprocess.Popen(
            [sys.executable, "-m", "webapp.sandbox", *map(str, args)],
            pass_fds=(job_r, reply_w),
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C at the terminal is the server's to handle
        )
        os.close(job_r)
        os.close(reply_w)
        decoder = _Decoder(
            process, Connection(job_w, readable=False), Connection(reply_r, writable=False)
        )
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
        while True:
            try:
                decoder = self._idle.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise ImageProblem(503, _BUSY) from None
            if decoder.process.poll() is None:
                break
            # ended while idle (killed from outside, say): not this upload's doing
            log.warning("decoder %s had ended while idle; replaced", decoder.pid)
            self._replace(decoder)
        healthy = False
        try:
            start = _cpu_seconds(decoder.pid)
            c, (h, w) = channels, size
            _send(decoder.to_it, {"height": h, "width": w, "channels": c}, data)
            while not decoder.from_it.poll(min(_POLL_S, max(0.0, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    log.info("decoder %s stopped at the request's deadline", decoder.pid)
                    raise ImageProblem(503, _BUSY)
                if _cpu_seconds(decoder.pid) - start > self.cpu_s:
                    log.info("decoder %s stopped at its CPU-time limit", decoder.pid)
                    raise ImageProblem(413, _TOO_COSTLY.format(what="time"))
            header = json.loads(decoder.from_it.recv_bytes(_HEADER_BYTES))
            payload = decoder.from_it.recv_bytes(c * h * w)
            healthy = isinstance(header, dict) and not header.get("memory")
            pixels = _pixels(header, payload, (c, h, w))
        except (EOFError, OSError):  # the decoder died (out of CPU time or memory), or lied
            try:
                code = decoder.process.wait(timeout=1)
            except subprocess.TimeoutExpired:  # alive: it sent more than a reply may hold
                log.warning("decoder %s sent an oversized reply; replaced", decoder.pid)
                raise ImageProblem(400, _UNREADABLE) from None
            what = "time" if code == -signal.SIGXCPU else "memory"
            log.info("decoder %s ended (exit %s) on an upload", decoder.pid, code)
            raise ImageProblem(413, _TOO_COSTLY.format(what=what)) from None
        except (ValueError, KeyError, TypeError, AttributeError):  # a reply no decoder writes
            healthy = False
            log.warning("decoder %s sent a malformed reply; replaced", decoder.pid)
            raise ImageProblem(400, _UNREADABLE) from None
        finally:
            if healthy:
                self._idle.put(decoder)
            else:
                self._replace(decoder)
        return pixels

    def close(self) -> None:
        """End every decoder (idle or not); reads after this fail with 503."""
        with self._lock:
            self._closed = True
            decoders = list(self._all)
            self._all.clear()
        for decoder in decoders:
            decoder.kill()


if __name__ == "__main__":
    main()

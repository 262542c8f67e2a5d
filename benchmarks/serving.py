"""A real ``fcnn serve`` process on 127.0.0.1, for measurements and tests that Litestar's
TestClient cannot make (the HTTP parser, slow clients, the worker's memory).

``python -m benchmarks.serving`` measures the worker's resident memory while up to four
large photos are answered at once (see ``--help``); :class:`Server` is the launcher the
tests share.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "Server",
    "free_port",
    "lossless_webp",
    "many_scans_jpeg",
    "multipart",
    "post",
    "progressive_jpeg",
    "status_kb",
    "tree_rss_kb",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kb(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` memory field (VmRSS, VmHWM...) in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def tree_rss_kb(pid: int) -> int:
    """The resident memory (kB) of process ``pid`` and every process below it (a server's
    worker with its decoder processes), summed from ``/proc``."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process has ended
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += status_kb(current, "VmRSS")
        except (OSError, KeyError):
            continue
        todo += children.get(current, [])
    return total


class Server:
    """``fcnn serve`` in a subprocess with ``env`` added (``DERMASCAN_*``); a context manager
    that waits for ``/health`` and stops the server on exit."""

    def __init__(self, model: Path | None = None, env: dict[str, str] | None = None):
        self.port = free_port()
        self.env = {
            **os.environ,
            "DERMASCAN_HOST": "127.0.0.1",
            "DERMASCAN_PORT": str(self.port),
            **({"DERMASCAN_MODEL": str(model)} if model else {}),
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fcnn serve exited with {self.proc.returncode}")
            try:
                if self.raw(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n", 2.0)[0].startswith(
                    b"HTTP/1.1 200"
                ):
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("fcnn serve did not answer /health within 60 s")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def connect(self, timeout: float = 10.0) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def raw(self, request: bytes, timeout: float = 10.0) -> tuple[bytes, bool]:
        """Send ``request`` on a new connection; (everything read, whether the server closed
        the connection) after the server closes it or ``timeout`` seconds pass."""
        with self.connect(timeout) as s:
            s.sendall(request)
            return read_until_closed(s, timeout)


def read_until_closed(s: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """What ``s`` receives until the peer closes (True) or ``timeout`` passes (False)."""
    s.settimeout(timeout)
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except TimeoutError:
        return out, False
    except ConnectionResetError:
        return out, True
    return out, True


def multipart(data: bytes, content_type: str = "image/png", **fields: str) -> tuple[bytes, str]:
    """A multipart/form-data body with ``data`` as the field ``file``; (body, content type)."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="photo"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post(server: Server, data: bytes, content_type: str = "image/png") -> tuple[int, dict]:
    """POST ``data`` to /api/predict; (status, JSON body)."""
    body, ctype = multipart(data, content_type)
    head = (
        f"POST /api/predict HTTP/1.1\r\nHost: t\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    out, _ = server.raw(head + body, timeout=120)
    header, _, payload = out.partition(b"\r\n\r\n")
    return int(header.split()[1]), json.loads(payload or b"{}")


def big_png(width: int, height: int, mode: str = "RGB") -> bytes:
    """A smooth ``width``×``height`` PNG (a gradient: quick to encode, a few MB)."""
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :] * np.ones((height, 1), np.float32)
    arr = ramp.astype(np.uint8)
    img = Image.fromarray(np.stack([arr] * 3, axis=-1)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def big_jpeg(width: int, height: int) -> bytes:
    small = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def gray16_png(side: int) -> bytes:
    """A ``side``² 16-bit gray PNG of zeros: a few hundred kB that decode to 2 bytes a pixel."""
    buf = io.BytesIO()
    Image.new("I;16", (side, side)).save(buf, format="PNG")
    return buf.getvalue()


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each JPEG marker segment; a scan's end takes in its data."""
    out, pos = [], 2
    while pos < len(data) - 1:
        marker = data[pos + 1]
        if marker == 0xD9:
            out.append((marker, pos, pos + 2))
            break
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:
            while True:
                end = data.index(b"\xff", end)
                if data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:
                    end += 2
                    continue
                break
        out.append((marker, pos, end))
        pos = end
    return out


def many_scans_jpeg(side: int, repeats: int) -> bytes:
    """A grey ``side``² progressive JPEG whose last scan is repeated ``repeats`` times: a few
    hundred bytes a scan, each a pass over the whole image (the "scan bomb")."""
    buf = io.BytesIO()
    Image.new("L", (side, side), 128).save(buf, "JPEG", progressive=True, quality=90)
    data = buf.getvalue()
    _, start, end = [s for s in _segments(data) if s[0] == 0xDA][-1]
    return data[:end] + data[start:end] * repeats + data[end:]


def progressive_jpeg(side: int, mode: str = "RGB") -> bytes:
    """A uniform ``side``² progressive JPEG (RGB or CMYK): ~1 MB that libjpeg decodes with
    every component's coefficients held at full resolution."""
    buf = io.BytesIO()
    Image.new(mode, (side, side), (100, 120, 140, 20)[: len(mode)]).save(
        buf, "JPEG", progressive=True, quality=75
    )
    return buf.getvalue()


def lossless_webp(side: int) -> bytes:
    """A uniform ``side``² lossless WebP: tens of bytes, ~16 bytes a pixel to decode."""
    buf = io.BytesIO()
    Image.new("RGB", (side, side), (100, 120, 140)).save(
        buf, "WEBP", lossless=True, method=0, quality=0
    )
    return buf.getvalue()


def measure(server: Server, uploads: list[bytes], at_once: int) -> dict[str, float]:
    """Post ``uploads`` ``at_once`` at a time; the worker's memory (MB) before, at its peak
    and after, with the statuses answered."""
    time.sleep(0.5)
    idle = status_kb(server.pid, "VmRSS") / 1024
    peak_before = status_kb(server.pid, "VmHWM") / 1024
    with ThreadPoolExecutor(at_once) as pool:
        statuses = [s for s, _ in pool.map(lambda d: post(server, d), uploads)]
    time.sleep(1.0)
    peak = status_kb(server.pid, "VmHWM") / 1024
    after = status_kb(server.pid, "VmRSS") / 1024
    return {
        "idle_mb": round(idle, 1),
        "peak_rise_mb": round(peak - max(idle, 0.0), 1),
        "after_rise_mb": round(after - idle, 1),
        "peak_before_mb": round(peak_before, 1),
        "statuses": statuses,
    }


class PeakRss:
    """Samples the resident memory of a server's worker and its decoders (:func:`tree_rss_kb`)
    every 20 ms while entered; ``peak_kb`` is the largest sum seen."""

    def __init__(self, pid: int):
        self.pid, self.peak_kb, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, tree_rss_kb(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def under_attack(
    server: Server, data: bytes, at_once: int = 4, honest_after_s: float = 1.0
) -> dict[str, object]:
    """``at_once`` uploads of ``data`` at once and, ``honest_after_s`` into the attack, one
    honest photo: the statuses, the attack's wall time, the honest photo's status and
    latency, and the peak rise of the resident memory of the worker and its decoders."""
    from PIL import Image as _Image

    honest_img = _Image.fromarray(
        np.random.default_rng(1).integers(80, 200, (300, 300, 3), dtype=np.uint8)
    )
    buf = io.BytesIO()
    honest_img.save(buf, format="JPEG", quality=90)

    def timed_post() -> tuple[int, float]:
        t0 = time.monotonic()
        status, _ = post(server, data, "image/jpeg")
        return status, time.monotonic() - t0

    idle_kb = tree_rss_kb(server.pid)
    with PeakRss(server.pid) as rss, ThreadPoolExecutor(at_once) as attackers:
        sent = [attackers.submit(timed_post) for _ in range(at_once)]
        time.sleep(honest_after_s)
        t_honest = time.monotonic()
        honest_status, _ = post(server, buf.getvalue(), "image/jpeg")
        honest_s = time.monotonic() - t_honest
        answers = [f.result() for f in sent]
    return {
        "statuses": [status for status, _ in answers],
        "slowest_s": round(max(s for _, s in answers), 2),
        "honest_status": honest_status,
        "honest_s": round(honest_s, 2),
        "peak_rise_mb": round((rss.peak_kb - idle_kb) / 1024, 1),
        "upload_kb": round(len(data) / 1024, 1),
    }


def attacks() -> dict[str, bytes]:
    """The costs a decoder's own limits do not see (#32): scans, coefficients, canvases."""
    return {
        "progressive JPEG, 3000 scans (10000x10000 grey)": many_scans_jpeg(10_000, 3000),
        "progressive JPEG, 90 scans (10000x10000 grey)": many_scans_jpeg(10_000, 90),
        "progressive RGB JPEG 10000x10000": progressive_jpeg(10_000, "RGB"),
        "progressive CMYK JPEG 10000x10000": progressive_jpeg(10_000, "CMYK"),
        "lossless WebP 8900x8900": lossless_webp(8900),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving", description=__doc__)
    parser.add_argument("--model", type=Path, default=None, help="checkpoint to serve")
    parser.add_argument("--at-once", type=int, default=4, help="concurrent uploads")
    parser.add_argument(
        "--attacks",
        action="store_true",
        help="the hostile files of #32, at once, with an honest photo during each attack "
        "(one server at the defaults for all)",
    )
    args = parser.parse_args(argv)
    if args.attacks:
        with Server(args.model) as server:
            time.sleep(1.0)
            for name, data in attacks().items():
                print(f"{name}: {under_attack(server, data, args.at_once)}", flush=True)
        return 0
    cases = {
        "24 MP RGB PNG (6000x4000)": big_png(6000, 4000),
        "24 MP RGBA PNG (6000x4000)": big_png(6000, 4000, "RGBA"),
        "48 MP JPEG (8000x6000)": big_jpeg(8000, 6000),
        "100 MP 16-bit gray PNG (10000x10000)": gray16_png(10000),
    }
    results = {}
    for name, data in cases.items():
        # a fresh server per case: VmHWM (the peak) only ever grows
        with Server(args.model) as server:
            r = measure(server, [data] * args.at_once, args.at_once)
        r["upload_mb"] = round(len(data) / 2**20, 2)
        results[name] = r
        print(f"{name}: {r}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

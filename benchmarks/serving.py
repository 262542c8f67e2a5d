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
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["Server", "free_port", "multipart", "post", "status_kb", "tree_rss_kb"]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving", description=__doc__)
    parser.add_argument("--model", type=Path, default=None, help="checkpoint to serve")
    parser.add_argument("--at-once", type=int, default=4, help="concurrent uploads")
    args = parser.parse_args(argv)
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

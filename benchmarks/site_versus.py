"""This checkout's DermaScan site against another commit's, over HTTP, interleaved.

    python -m benchmarks.site_versus --base REV [--requests 300] [--out reports/site-versus.md]

Starts ``fcnn serve`` (one worker, the shipped model) from a temporary git worktree of
``REV`` and from this checkout, on two loopback ports, then uploads the same held-out
HAM10000 photos to both, one request at a time, alternating the side that goes first, so
that the VM's drift hits both alike. Reports each side's median and 95th-percentile latency
of ``POST /api/predict``, the ratio of the medians (head / base), and whether every answer
(classes, probabilities, risk, flags) was the same on both sides.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.serving import free_port
from benchmarks.versus import REPO, _rev, checkout
from fcnn.data.paths import data_root
from fcnn.io import atomic_write_text


def _start(folder: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DERMASCAN_PORT": str(port), "DERMASCAN_WORKERS": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve"], cwd=folder, env=env,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"the server in {folder} did not start: see {log}")


def _multipart(photo: bytes) -> tuple[bytes, str]:
    boundary = "fcnnbenchmarkboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + photo
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def _predict(conn: http.client.HTTPConnection, photo: bytes) -> tuple[float, dict]:
    body, content_type = _multipart(photo)
    t0 = time.perf_counter()
    conn.request("POST", "/api/predict", body, {"Content-Type": content_type})
    response = conn.getresponse()
    payload = response.read()
    seconds = time.perf_counter() - t0
    if response.status != 200:
        raise SystemExit(f"HTTP {response.status}: {payload[:200]!r}")
    answer = json.loads(payload)
    answer.pop("model_version", None)  # names the fcnn version, which may differ
    return seconds, answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.site_versus", description=__doc__)
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--requests", type=int, default=300, help="per side")
    parser.add_argument("--photos", type=int, default=100, help="distinct HAM10000 JPEGs")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="reports/site-versus.md")
    args = parser.parse_args(argv)
    folder = data_root(args.data_dir) / "ham10000" / "HAM10000_images"
    photos = [p.read_bytes() for p in sorted(folder.glob("*.jpg"))[-args.photos :]]
    if not photos:
        raise SystemExit(f"no HAM10000 JPEGs in {folder}")
    base = _rev(args.base)
    latencies: dict[str, list[float]] = {"base": [], "head": []}
    differing = 0
    with checkout(base) as worktree:
        ports = {"base": free_port(), "head": free_port()}
        logs = Path(worktree).parent
        servers = {
            side: _start(path, ports[side], logs / f"{side}.log")
            for side, path in (("base", worktree), ("head", REPO))
        }
        try:
            conns = {
                s: http.client.HTTPConnection("127.0.0.1", p, timeout=60) for s, p in ports.items()
            }
            for side in conns:  # warm-up: first requests load lazily imported code
                for photo in photos[:5]:
                    _predict(conns[side], photo)
            for i in range(args.requests):
                photo = photos[i % len(photos)]
                answers = {}
                for side in ("base", "head") if i % 2 == 0 else ("head", "base"):
                    seconds, answers[side] = _predict(conns[side], photo)
                    latencies[side].append(seconds)
                differing += answers["base"] != answers["head"]
        finally:
            for proc in servers.values():
                proc.terminate()
                proc.wait(timeout=60)
    med = {s: statistics.median(v) * 1e3 for s, v in latencies.items()}
    p95 = {s: sorted(v)[int(0.95 * len(v))] * 1e3 for s, v in latencies.items()}
    text = "\n".join(
        [
            f"# The site: {_rev('HEAD')} against {base}",
            "",
            f"`python -m benchmarks.site_versus --base {args.base} --requests {args.requests}`: "
            f"`POST /api/predict` of {len(photos)} held-out HAM10000 JPEGs, one request at a "
            "time, alternating which side goes first; `fcnn serve` with one worker and the "
            "shipped model on each side.",
            "",
            "| side | median ms | p95 ms | requests |",
            "| --- | --- | --- | --- |",
            *(
                f"| {s} | {med[s]:.2f} | {p95[s]:.2f} | {len(latencies[s])} |"
                for s in ("base", "head")
            ),
            "",
            f"head / base (medians): **{med['head'] / med['base']:.3f}×**; answers that "
            f"differed: **{differing}** of {args.requests}.",
            "",
        ]
    )
    atomic_write_text(Path(args.out), text)
    print(text)
    return 0 if differing == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

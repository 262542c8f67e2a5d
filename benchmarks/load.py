"""Load test of a running DermaScan server: N concurrent clients POST HAM10000 JPEGs to
``/api/predict`` for a fixed time and the latencies are reported.

    fcnn serve --workers 2 &
    python -m benchmarks.load --url http://127.0.0.1:8000 --clients 32 --seconds 20

Only addresses on this machine are allowed (loopback). Writes ``reports/load.json`` and
``reports/load.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import statistics
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx

from fcnn.data.paths import data_root
from fcnn.io import atomic_write_text


def _loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _client(
    url: str,
    images: list[bytes],
    stop_at: float,
    latencies: list[float],
    errors: list[str],
    offset: int,
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        i = offset
        while time.perf_counter() < stop_at:
            data = images[i % len(images)]
            i += 1
            t0 = time.perf_counter()
            try:
                r = await client.post(
                    url + "/api/predict", files={"file": ("lesion.jpg", data, "image/jpeg")}
                )
                if r.status_code != 200:
                    errors.append(f"HTTP {r.status_code}")
                    continue
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)
                continue
            latencies.append(time.perf_counter() - t0)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--images", type=int, default=64, help="distinct HAM10000 JPEGs to cycle")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="reports")
    args = parser.parse_args(argv)
    if not _loopback(args.url):
        parser.error("the load test only targets servers on this machine (127.0.0.1/localhost)")
    if not 1 <= args.clients <= 256 or not 0 < args.seconds <= 600:
        parser.error("--clients must be 1..256 and --seconds 0..600")
    folder = data_root(args.data_dir) / "ham10000" / "HAM10000_images"
    images = [p.read_bytes() for p in sorted(folder.glob("*.jpg"))[: args.images]]
    if not images:
        parser.error(f"no HAM10000 JPEGs in {folder}")
    latencies: list[float] = []
    errors: list[str] = []

    async def run() -> float:
        stop_at = time.perf_counter() + args.seconds
        t0 = time.perf_counter()
        await asyncio.gather(
            *(_client(args.url, images, stop_at, latencies, errors, k) for k in range(args.clients))
        )
        return time.perf_counter() - t0

    cpu_before = time.process_time()
    elapsed = asyncio.run(run())
    cpu_s = time.process_time() - cpu_before
    result = {
        "url": args.url,
        "clients": args.clients,
        "seconds": elapsed,
        "requests": len(latencies),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": _percentile(latencies, 0.50) * 1e3,
        "p95_ms": _percentile(latencies, 0.95) * 1e3,
        "p99_ms": _percentile(latencies, 0.99) * 1e3,
        "mean_ms": statistics.fmean(latencies) * 1e3 if latencies else float("nan"),
        # the clients' own CPU time while they sent (not startup, not reading the photos)
        "client_cpu_s": cpu_s,
    }
    text = (
        f"# DermaScan load test\n\n{args.clients} concurrent clients for {elapsed:.1f} s "
        f"against {args.url}, uploading {len(images)} HAM10000 224x224 JPEGs in turn.\n\n"
        "| requests/s | p50 ms | p95 ms | p99 ms | requests | errors |\n"
        "| --- | --- | --- | --- | --- | --- |\n"
        f"| {result['requests_per_s']:.1f} | {result['p50_ms']:.0f} | {result['p95_ms']:.0f} | "
        f"{result['p99_ms']:.0f} | {result['requests']} | {result['errors']} |\n"
    )
    atomic_write_text(Path(args.out) / "load.json", json.dumps(result, indent=2))
    atomic_write_text(Path(args.out) / "load.md", text)
    print(text)
    return 0 if not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Single-image DermaScan latency: ``python -m benchmarks.latency [--model PATH]
[--compare-in-process]``.

Times the web app's own code path for one uploaded photo: decode the JPEG bytes in one of
the site's decoder processes (:mod:`webapp.sandbox`, at the default limits), prepare the
image (EXIF orientation, RGB, resize, normalization), calibrated prediction with the
out-of-distribution check, and the decision rule (:meth:`webapp.service.Predictor.predict`,
no saliency). ``--compare-in-process`` also times the same calls decoding in this process,
interleaved call by call, and reports the ratio (the decoder processes' cost). The photos
are held-out HAM10000 test images (from the decoded cache, enlarged to 224×224 JPEGs, the
size of the original files) when the data is available. Reports the median and
95th percentile over ``--repeats`` calls after a warm-up, with BLAS on the machine's
cores, to ``reports/latency.{json,md}``.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from fcnn.data.errors import DataError
from fcnn.inference import load
from fcnn.io import atomic_write_text
from fcnn.training.config import load_config
from fcnn.training.data import prepare_data
from webapp.sandbox import DecoderPool
from webapp.service import Predictor, load_conditions
from webapp.settings import DEFAULT_MODEL, Settings


def _photos(config: str, data_dir: str | None, n: int) -> tuple[list[bytes], str]:
    try:
        test = prepare_data(load_config(config, []), data_dir).test
        arrays = [img.transpose(1, 2, 0) for img in test.images[:n]]  # (C,H,W) -> (H,W,C)
        source = f"{len(arrays)} HAM10000 test images as 224x224 JPEGs"
    except DataError:
        rng = np.random.default_rng(0)
        arrays = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(n)]
        source = f"{n} random 224x224 JPEGs (HAM10000 not found)"
    out = []
    for arr in arrays:
        buf = io.BytesIO()
        Image.fromarray(arr).resize((224, 224)).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out, source


def _time(sides: dict[str, Predictor], photos: list[bytes], repeats: int) -> dict[str, list[float]]:
    """Milliseconds of ``predict`` per side, sorted, the sides interleaved call by call (the
    VM's speed drifts) after 20 warm-up calls each."""
    for data in photos[:20]:
        for predictor in sides.values():
            predictor.predict(data)
    times: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(repeats):
        data = photos[i % len(photos)]
        for name in sorted(sides, reverse=i % 2 == 1):  # alternate which side goes first
            t0 = time.perf_counter()
            sides[name].predict(data)
            times[name].append(1e3 * (time.perf_counter() - t0))
    return {name: sorted(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--config", default="configs/dermascan.yaml")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--out", default="reports")
    parser.add_argument(
        "--compare-in-process",
        action="store_true",
        help="also time decoding in this process, interleaved, and give the ratio",
    )
    args = parser.parse_args(argv)
    model, settings = load(args.model), Settings()
    decoders = DecoderPool(
        settings.decode_workers,
        settings.decode_memory_mb,
        settings.decode_cpu_s,
        settings.max_pixels,
    )
    try:
        sides = {"site": Predictor(model, load_conditions(), decoders=decoders)}
        if args.compare_in_process:
            sides["in process"] = Predictor(model, load_conditions())
        photos, source = _photos(args.config, args.data_dir, 100)
        times_ms = _time(sides, photos, args.repeats)
    finally:
        decoders.close()
    site = times_ms["site"]
    result = {
        "model": str(args.model),
        "photos": source,
        "repeats": args.repeats,
        "median_ms": statistics.median(site),
        "p95_ms": site[int(0.95 * (len(site) - 1))],
    }
    if args.compare_in_process:
        inproc = times_ms["in process"]
        result["in_process_median_ms"] = statistics.median(inproc)
        result["in_process_p95_ms"] = inproc[int(0.95 * (len(inproc) - 1))]
        result["site_over_in_process"] = result["median_ms"] / result["in_process_median_ms"]
    out = Path(args.out)
    atomic_write_text(out / "latency.json", json.dumps(result, indent=2))
    rows = f"| {args.model.name}, decoded in a decoder process (the site) | "
    rows += f"{result['median_ms']:.1f} | {result['p95_ms']:.1f} |\n"
    if args.compare_in_process:
        rows += f"| {args.model.name}, decoded in this process | "
        rows += f"{result['in_process_median_ms']:.1f} | {result['in_process_p95_ms']:.1f} |\n"
        rows += f"\nsite / in process (medians): {result['site_over_in_process']:.2f}x\n"
    flag = " --compare-in-process" if args.compare_in_process else ""
    text = (
        "# DermaScan single-image latency\n\n"
        f"`python -m benchmarks.latency{flag}`: {source}; decode, prepare, calibrated "
        f"predict, out-of-distribution check and decision, {args.repeats} calls after a "
        "warm-up, interleaved call by call.\n\n"
        f"| path | median ms | p95 ms |\n| --- | --- | --- |\n{rows}"
    )
    atomic_write_text(out / "latency.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

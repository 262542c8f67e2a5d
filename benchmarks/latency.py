"""Single-image DermaScan latency: ``python -m benchmarks.latency [--model PATH]``.

Times the web app's own code path for one uploaded photo, in this process: decode the
JPEG bytes, prepare the image (EXIF orientation, RGB, resize, normalization), calibrated
prediction with the out-of-distribution check, and the decision rule
(:meth:`webapp.service.Predictor.predict`, no saliency). The photos are held-out
HAM10000 test images (from the decoded cache, enlarged to 224×224 JPEGs, the size of
the original files) when the data is available. Reports the median and
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
from webapp.service import Predictor, load_conditions
from webapp.settings import DEFAULT_MODEL


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--config", default="configs/dermascan.yaml")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--out", default="reports")
    args = parser.parse_args(argv)
    predictor = Predictor(load(args.model), load_conditions())
    photos, source = _photos(args.config, args.data_dir, 100)
    for data in photos[:20]:  # warm-up
        predictor.predict(data)
    times_ms = []
    for i in range(args.repeats):
        data = photos[i % len(photos)]
        t0 = time.perf_counter()
        predictor.predict(data)
        times_ms.append(1e3 * (time.perf_counter() - t0))
    times_ms.sort()
    result = {
        "model": str(args.model),
        "photos": source,
        "repeats": args.repeats,
        "median_ms": statistics.median(times_ms),
        "p95_ms": times_ms[int(0.95 * (len(times_ms) - 1))],
    }
    out = Path(args.out)
    atomic_write_text(out / "latency.json", json.dumps(result, indent=2))
    text = (
        "# DermaScan single-image latency\n\n"
        f"`python -m benchmarks.latency`: {source}; decode, prepare, calibrated predict, "
        f"out-of-distribution check and decision, {args.repeats} calls after a warm-up.\n\n"
        f"| model | median ms | p95 ms |\n| --- | --- | --- |\n"
        f"| {args.model.name} | {result['median_ms']:.1f} | {result['p95_ms']:.1f} |\n"
    )
    atomic_write_text(out / "latency.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

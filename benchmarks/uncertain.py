"""How often DermaScan says "uncertain": on inputs that are not skin (should be always) and on
held-out HAM10000 lesions (should be rarely).

``python -m benchmarks.uncertain [--model PATH] [--config CONFIG]`` answers
every image through the same code path as ``POST /api/predict`` (decode, prepare,
calibrated predict, out-of-distribution check, confidence threshold) and writes
``reports/uncertain.json`` and ``reports/uncertain.md``.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.site_scores import lesion_photos
from fcnn.data import cifar10, mnist
from fcnn.data.paths import data_root
from fcnn.inference import load
from fcnn.io import atomic_write_text
from webapp.service import Predictor, load_conditions
from webapp.settings import DEFAULT_MODEL


def _jpeg(arr_hwc: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr_hwc).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _share(predictor: Predictor, images: list[bytes]) -> dict[str, float]:
    reasons = []
    for data in images:
        answer = predictor.predict(data)
        reasons.append(answer["uncertain_reason"])
    n = len(reasons)
    return {
        "n": n,
        "uncertain": sum(r is not None for r in reasons) / n,
        "not_skin": sum(r == "not_skin" for r in reasons) / n,
        "low_confidence": sum(r == "low_confidence" for r in reasons) / n,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.uncertain", description=__doc__)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--config", default=None, help="default: the model's stored config")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--per-set", type=int, default=500)
    parser.add_argument("--out", default="reports")
    args = parser.parse_args(argv)
    root = data_root(args.data_dir)
    rng = np.random.default_rng(0)
    predictor = Predictor(load(args.model), load_conditions())
    sets: dict[str, list[bytes]] = {}
    colours = rng.integers(0, 256, (args.per_set, 3))
    sets["blank images"] = [
        _jpeg(np.broadcast_to(c.astype(np.uint8), (224, 224, 3)).copy())
        for c in colours[: args.per_set // 2]
    ]
    noise = rng.normal(0, 3, (args.per_set - args.per_set // 2, 224, 224, 1))
    sets["blank images"] += [
        _jpeg(np.clip(c + n, 0, 255).astype(np.uint8))
        for c, n in zip(colours[args.per_set // 2 :], noise, strict=True)
    ]
    _, mnist_test = mnist.load(root, allow_download=False)
    sets["MNIST digits"] = [
        _jpeg(np.repeat(img[0][..., None], 3, axis=2)) for img in mnist_test.images[: args.per_set]
    ]
    _, cifar_test = cifar10.load(root, allow_download=False)
    pick = rng.choice(len(cifar_test), args.per_set, replace=False)
    sets["CIFAR-10 photos"] = [_jpeg(cifar_test.images[i].transpose(1, 2, 0)) for i in pick]
    # the lesion-disjoint held-out split the model was trained with
    sets["HAM10000 held-out lesions"], _ = lesion_photos(
        args.model, "test", args.data_dir, args.config
    )
    results = {name: _share(predictor, images) for name, images in sets.items()}
    lines = [
        "# DermaScan: share of answers marked uncertain",
        "",
        f"Model {args.model} (threshold {predictor.rules.uncertain_below}).",
        "",
        "| input | n | uncertain | of which not_skin | of which low_confidence |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['n']} | {r['uncertain']:.1%} | {r['not_skin']:.1%} | "
            f"{r['low_confidence']:.1%} |"
        )
    text = "\n".join(lines) + "\n"
    atomic_write_text(Path(args.out) / "uncertain.json", json.dumps(results, indent=2))
    atomic_write_text(Path(args.out) / "uncertain.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What a checkout computes, written down so that a refactor can show it changed nothing.

    python -m benchmarks.same_numbers dump OUT        # from the checkout to record
    python -m benchmarks.same_numbers compare A B     # two dumps: exit 0 when identical

``dump`` writes the shipped DermaScan model's probabilities, raw logits, penultimate features
and answers on the first 800 HAM10000 photos, its ONNX export, and three seeded short
training runs of the configs as shipped (LeNet-5 and the BatchNorm net on MNIST for 2
epochs, the CIFAR-10 net for 1 epoch on 4,000 images), each with its metrics and its best
model's ONNX export, on 2 processes. ``compare`` checks the arrays bit for bit, the answers
and ONNX files byte for byte, and the metrics but their timing columns. Run ``dump`` in each
checkout with the data in ``FCNN_DATA``; for a commit older than this module, run this file
from a worktree of it, which then imports that commit's fcnn::

    git worktree add --detach /tmp/base REV
    cd /tmp/base && PYTHONPATH=. python /path/to/benchmarks/same_numbers.py dump /tmp/before
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from fcnn.data.paths import data_root

RUNS = {  # name: (config, overrides)
    "lenet": ("configs/mnist.yaml", ["train.epochs=2"]),
    "bn": ("configs/mnist.yaml", ["train.epochs=2", "model=bn_net_mnist"]),
    "cifar": ("configs/cifar10_tiny_vgg.yaml", ["train.epochs=1", "data.limit_train=4000",
                                       "data.limit_test=1000"]),
}  # fmt: skip
ARRAYS = ("probs.npy", "logits.npy", "features.npy")
TIMING = ("epoch_time_s", "images_per_s")


def _fcnn(*args: str) -> str:
    """The fcnn command of the checkout in the current folder (not the installed one)."""
    code = "import sys; from cli.main import main; sys.argv[0] = 'fcnn'; main()"
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(
            f"fcnn {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
    return done.stdout


def dump(out: Path) -> None:
    import fcnn

    out.mkdir(parents=True, exist_ok=True)
    photos = sorted((data_root() / "ham10000" / "HAM10000_images").glob("*.jpg"))[:800]
    model = fcnn.load("webapp/model/dermascan.npz")
    images = model.load_images(photos)
    np.save(out / "probs.npy", model.predict(images))
    np.save(out / "logits.npy", model.raw_logits(images))
    np.save(out / "features.npy", model.features(images))
    (out / "answers.json").write_text(json.dumps([repr(a) for a in model.answers(images)]))
    _fcnn("export", "--weights", "webapp/model/dermascan.npz", "--out", str(out / "shipped.onnx"),
          "--format", "onnx", "--force")  # fmt: skip
    for name, (config, overrides) in RUNS.items():
        sets = [arg for o in overrides for arg in ("--set", o)]
        log = _fcnn("train", config, *sets, "--no-progress", "--procs", "2")
        run = Path(next(line.split("run folder:")[1].strip() for line in log.splitlines()
                        if "run folder:" in line))  # fmt: skip
        shutil.copy(run / "metrics.csv", out / f"metrics_{name}.csv")
        _fcnn("export", "--weights", str(run / "best.npz"), "--out", str(out / f"{name}.onnx"),
              "--format", "onnx", "--force")  # fmt: skip
        print(f"{name}: {run}", flush=True)


def _metrics(path: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(path.open()))
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def compare(a: Path, b: Path) -> int:
    lines, same = [], True
    for name in ARRAYS:
        equal = np.array_equal(np.load(a / name), np.load(b / name))
        same &= equal
        lines.append(f"{name}: {'identical' if equal else 'DIFFERENT'}")
    for name in ["answers.json", "shipped.onnx", *(f"{r}.onnx" for r in RUNS)]:
        digests = [hashlib.sha256((d / name).read_bytes()).hexdigest()[:16] for d in (a, b)]
        same &= digests[0] == digests[1]
        lines.append(f"{name}: {digests[0]} vs {digests[1]}")
    for run in RUNS:
        equal = _metrics(a / f"metrics_{run}.csv") == _metrics(b / f"metrics_{run}.csv")
        same &= equal
        last = _metrics(b / f"metrics_{run}.csv")[-1]
        lines.append(
            f"metrics_{run}.csv (all but {', '.join(TIMING)}): "
            f"{'identical' if equal else 'DIFFERENT'}; last val_acc {last['val_acc']}"
        )
    print("\n".join(lines))
    return 0 if same else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.same_numbers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dump").add_argument("out", type=Path)
    both = sub.add_parser("compare")
    both.add_argument("a", type=Path)
    both.add_argument("b", type=Path)
    args = parser.parse_args(argv)
    if args.command == "dump":
        dump(args.out)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    raise SystemExit(main())

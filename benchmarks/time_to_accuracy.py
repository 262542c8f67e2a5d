"""Time to accuracy of a report run: when the test accuracy first reached each threshold.

A report run is ``fcnn train CONFIG --set evaluate.test_every_epoch=true``: after every epoch
it also evaluates the test split (with the config's test-time augmentation), outside the
epoch's timed part, into ``metrics.csv``. The training time at an epoch is the sum of the
epochs' ``epoch_time_s`` so far (steps only: no validation, no test evaluation), which is
what a run without the report spends training to that point.

    python -m benchmarks.time_to_accuracy RUN_DIR [--thresholds 0.85 0.90 0.92 0.93]
        [--out reports/cifar10-time-to-accuracy.md]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from fcnn.io import atomic_write_text

__all__ = ["crossings", "main", "report"]


Crossing = tuple[float, int | None, float | None]


def crossings(rows: list[dict[str, str]], thresholds: list[float]) -> list[Crossing]:
    """``(threshold, epoch, training seconds)`` for the first epoch whose ``test_acc`` reaches
    each threshold, or ``(threshold, None, None)`` when none does."""
    if not rows or "test_acc" not in rows[0]:
        raise SystemExit(
            "metrics.csv has no test_acc column: train with --set evaluate.test_every_epoch=true"
        )
    out = []
    for threshold in thresholds:
        elapsed, hit = 0.0, None
        for row in rows:
            elapsed += float(row["epoch_time_s"])
            if float(row["test_acc"]) >= threshold:
                hit = (int(row["epoch"]), elapsed)
                break
        out.append((threshold, *(hit or (None, None))))
    return out


def report(run_dir: Path, thresholds: list[float]) -> str:
    """The table, and every epoch's figures, as Markdown."""
    with open(run_dir / "metrics.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    lines = [
        f"# Time to accuracy: {run_dir.name}",
        "",
        f"`python -m benchmarks.time_to_accuracy {run_dir}`: training time (the epochs' steps, "
        "without validation or the report's test evaluations) at which the test accuracy "
        "first reached each threshold.",
        "",
        "| test accuracy | first at epoch | training time |",
        "| --- | ---: | ---: |",
    ]
    for threshold, epoch, seconds in crossings(rows, thresholds):
        when = "not reached | –" if seconds is None else f"{epoch} | {seconds / 60:.1f} min"
        lines.append(f"| ≥ {threshold:.2f} | {when} |")
    lines += [
        "",
        "| epoch | test accuracy | val accuracy | epoch time |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['epoch']} | {float(row['test_acc']):.4f} | {float(row['val_acc']):.4f} | "
            f"{float(row['epoch_time_s']):.1f} s |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.85, 0.90, 0.92, 0.93])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    text = report(args.run_dir, args.thresholds)
    print(text)
    if args.out is not None:
        atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

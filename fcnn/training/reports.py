"""Run reports: the ``results.csv`` ledger; the figures are drawn by :mod:`fcnn.plots`
(re-exported here, where they used to live)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from fcnn.plots import plot_confusion, plot_curves

__all__ = ["append_result", "plot_confusion", "plot_curves"]

RESULT_FIELDS = (
    "time",
    "config",
    "dataset",
    "model",
    "seed",
    "epochs",
    "best_val_acc",
    "test_acc",
    "wall_time_s",
    "run_dir",
)


def append_result(path: Path, row: dict[str, Any]) -> None:
    """Append one row to the results ledger, writing the header for a new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=RESULT_FIELDS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)

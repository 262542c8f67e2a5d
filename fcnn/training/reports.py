"""Run reports: the ``results.csv`` ledger; the figures are drawn by :mod:`fcnn.plots`
(re-exported here, where they used to live)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from fcnn.io import atomic_write_text
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
    "overrides",  # the --set overrides the config was read with, "; "-separated
)


def append_result(path: Path, row: dict[str, Any]) -> None:
    """Add one run's row to the results ledger (a new file gets the header); a row of the
    same ``run_dir`` (a finished run resumed) is replaced, not repeated. A ledger written
    with fewer columns gains the new ones (empty in its old rows). Written atomically."""
    rows: list[dict[str, Any]] = []
    if path.exists() and path.stat().st_size:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r.get("run_dir") != str(row["run_dir"])]
    rows.append(row)
    out = io.StringIO()
    fields: list[str] = list(RESULT_FIELDS)
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore", restval="")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, out.getvalue())

"""Callbacks run at the end of each epoch: early stopping, best checkpoint, CSV log.

Each keeps a tiny state (best value, epochs waited) that it exposes through
``state_dict`` / ``load_state_dict`` so a resumed run behaves exactly like an
uninterrupted one.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fcnn.training.config import CheckpointConfig, CsvLoggerConfig, EarlyStoppingConfig

__all__ = [
    "BestCheckpoint",
    "CsvLogger",
    "EarlyStopping",
    "Monitor",
    "make_callbacks",
    "resolve_mode",
]


def resolve_mode(monitor: str, mode: str) -> str:
    """``auto`` means ``min`` for losses and ``max`` for accuracies."""
    if mode != "auto":
        return mode
    return "min" if monitor.endswith("loss") else "max"


class Monitor:
    """Tracks the best value of one metric."""

    def __init__(self, monitor: str, mode: str, min_delta: float = 0.0):
        self.monitor = monitor
        self.mode = resolve_mode(monitor, mode)
        self.min_delta = min_delta
        self.best = math.inf if self.mode == "min" else -math.inf

    def improved(self, metrics: dict[str, float]) -> bool:
        value = metrics[self.monitor]
        if self.mode == "min":
            better = value < self.best - self.min_delta
        else:
            better = value > self.best + self.min_delta
        if better:
            self.best = value
        return better


class EarlyStopping:
    """Stops a run once its monitored metric has not improved for ``patience`` epochs in a
    row (improved: better than the best so far by more than ``min_delta``)."""

    def __init__(self, cfg: EarlyStoppingConfig):
        self.cfg = cfg
        self.tracker = Monitor(cfg.monitor, cfg.mode, cfg.min_delta)
        self.wait = 0

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> bool:
        """True when training should stop."""
        if self.tracker.improved(metrics):
            self.wait = 0
        else:
            self.wait += 1
        return self.wait >= self.cfg.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.tracker.best, "wait": self.wait}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.tracker.best, self.wait = float(d["best"]), int(d["wait"])


class BestCheckpoint:
    """Calls ``save(path, metrics)`` whenever the monitored metric improves, or after every
    epoch with ``cfg.keep == "last"``; ``path`` is the run's own file (``<run>/best.npz``),
    ``cfg.filepath`` by default."""

    def __init__(
        self,
        cfg: CheckpointConfig,
        save: Callable[[Path, dict[str, float]], None],
        path: Path | None = None,
    ):
        self.cfg = cfg
        where = path if path is not None else cfg.filepath
        if where is None:
            raise ValueError("BestCheckpoint needs a path, or a filepath in its config")
        self.path = Path(where)
        self.tracker = Monitor(cfg.monitor, cfg.mode)
        self.save = save
        self.best_epoch: int | None = None

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> bool:
        improved = self.tracker.improved(metrics)  # tracked either way: the best is logged
        if improved or self.cfg.keep == "last":
            self.save(self.path, metrics)
            self.best_epoch = epoch
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.tracker.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.tracker.best, self.best_epoch = float(d["best"]), d["best_epoch"]


class CsvLogger:
    """Appends one row of metrics per epoch (header written with the first row);
    with ``write=False`` (replicas other than rank 0) it writes nothing."""

    def __init__(self, cfg: CsvLoggerConfig, default_path: Path, write: bool = True):
        self.path = Path(cfg.filepath) if cfg.filepath else default_path
        self.write = write

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> bool:
        if not self.write:
            return False
        row = {"epoch": epoch + 1, **metrics}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        return False

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        return None


def make_callbacks(
    configs: tuple[Any, ...],
    save_best: Callable[[Path, dict[str, float]], None],
    best_path: Path,
    run_dir: Path,
    writes: bool,
) -> tuple[list[Any], BestCheckpoint]:
    """The callbacks a run's config lists, in its order, and its best-checkpoint callback.
    ``save_best(path, metrics)`` writes the run's own best model to ``best_path`` (a
    checkpoint's ``filepath`` only gets a copy at the end); a :class:`BestCheckpoint` by
    ``val_acc`` and a :class:`CsvLogger` of ``run_dir/metrics.csv`` are added when the config
    has none;
    ``writes`` is False on the replicas that write no files."""
    callbacks: list[Any] = []
    best: BestCheckpoint | None = None
    for cb_cfg in configs:
        if isinstance(cb_cfg, EarlyStoppingConfig):
            callbacks.append(EarlyStopping(cb_cfg))
        elif isinstance(cb_cfg, CheckpointConfig):
            best = BestCheckpoint(cb_cfg, save_best, best_path)
            callbacks.append(best)
        elif isinstance(cb_cfg, CsvLoggerConfig):
            callbacks.append(CsvLogger(cb_cfg, run_dir / "metrics.csv", writes))
    if best is None:  # every run keeps its best model, by validation accuracy unless told
        best = BestCheckpoint(CheckpointConfig(), save_best, best_path)
        callbacks.append(best)
    if not any(isinstance(cb, CsvLogger) for cb in callbacks):
        callbacks.append(CsvLogger(CsvLoggerConfig(), run_dir / "metrics.csv", writes))
    return callbacks, best

"""The end of a run: the fits on the validation split stored in the model file (the best
checkpoint, else ``last.npz``; :mod:`fcnn.training.fits`); the copy where the config asks;
the evaluation on the test split; ``summary.json``, the run's ledger row and figures
(:func:`finish_run`)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np

from fcnn import checkpoint, distributed, metrics
from fcnn.io import atomic_write, atomic_write_text
from fcnn.training import reports
from fcnn.training.fits import FitRequest, finalize_model
from fcnn.training.loop import evaluate
from fcnn.training.setup import Setup

__all__ = ["RunResult", "copy_model", "finish_run", "write_reports"]

log = logging.getLogger("fcnn.train")


def write_reports(
    config, run_dir, history, confusion, class_names, test_acc, best_val, wall
) -> list[Path]:
    """The run's ledger row (``<reports_dir>/results.csv``) and its figures (in the run
    folder); returns the files written."""
    ledger = Path(config.reports_dir or config.runs_dir) / "results.csv"
    reports.append_result(
        ledger,
        {
            "time": dt.datetime.now().isoformat(timespec="seconds"),
            "config": config.name,
            "dataset": config.dataset,
            "model": config.model_name,
            "seed": config.seed,
            "epochs": len(history),
            "best_val_acc": f"{best_val:.4f}",
            "test_acc": f"{test_acc:.4f}",
            "wall_time_s": f"{wall:.1f}",
            "run_dir": str(run_dir),
            "overrides": "; ".join(config.overrides),
        },
    )
    title = f"{config.name} ({config.model_name}, seed {config.seed})"
    written = [ledger]
    if history:
        written.append(reports.plot_curves(history, run_dir / "figures" / "curves.png", title))
    written.append(
        reports.plot_confusion(
            confusion, class_names, run_dir / "figures" / "confusion.png", f"{title}: test split"
        )
    )
    return written


@attrs.frozen
class RunResult:
    """What a finished (or early-stopped) run returns: its folder, per-epoch history, kept
    checkpoints, test accuracy and confusion matrix, and its wall time."""

    run_dir: Path
    history: list[dict[str, float]]
    best_checkpoint: Path | None
    last_checkpoint: Path
    test_accuracy: float
    test_confusion: np.ndarray = attrs.field(eq=False)
    wall_time_s: float
    stopped_early: bool


def copy_model(
    best_path: Path,
    filepath: str | None,
    monitor: tuple[str, str] = ("val_acc", "max"),
    force: bool = False,
) -> tuple[Path | None, str] | None:
    """Copy the finished model to the checkpoint callback's ``filepath`` (atomically), a
    convenience for scripts; nothing reads it back as the run's own. A file there that holds
    a better value of the ``monitor`` (name, "min"/"max") from a model of the same config is
    kept unless ``force``. Returns (the path written or None when kept, a log line)."""
    target = Path(filepath) if filepath else None
    if target is None or target.resolve() == best_path.resolve():
        return None
    replaced = target.exists()
    if replaced and not force:
        kept = _better_copy(target, best_path, monitor)
        if kept is not None:
            return None, kept
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target) as tmp:
        shutil.copyfile(best_path, tmp)
    what = "replaced the file there" if replaced else "a new file"
    return target, f"copied this run's model {best_path} to {target} ({what})"


def _better_copy(target: Path, best_path: Path, monitor: tuple[str, str]) -> str | None:
    """A line saying why ``target`` is kept: it is a model of the same config whose stored
    ``monitor`` value beats ``best_path``'s; None when it may be replaced."""
    name, mode = monitor
    try:
        there, here = checkpoint.load(target).info, checkpoint.load(best_path).info
    except checkpoint.CheckpointError:
        return None  # not a model: nothing of value to keep
    same = (there.config or {}).get("name") == (here.config or {}).get("name")
    old, new = (there.metrics or {}).get(name), (here.metrics or {}).get(name)
    if not same or not isinstance(old, (int, float)) or not isinstance(new, (int, float)):
        return None
    if (old > new) if mode == "max" else (old < new):
        return (
            f"kept {target}: it holds a model of the same config with {name} {old:.4f}, better "
            f"than this run's {new:.4f} (fcnn train --force replaces it); this run's model is "
            f"{best_path}"
        )
    return None


def finish_run(
    setup: Setup,
    params: Any,
    state: Any,
    history: list[dict[str, float]],
    *,
    monitor: tuple[str, str],
    keep: Literal["best", "last"] = "best",
    force: bool = False,
    copy_to: str | None,
    elapsed_s: float,
    stopped_early: bool,
    replicas: distributed.Replicas,
    echo: Callable[[str], None],
) -> RunResult:
    """The end of a run: the run's kept model (``<run>/best.npz``: the best by ``monitor``,
    or with ``keep="last"`` the last epoch's; the final ``params`` when no epoch was
    validated) gets its calibration and decision rule fitted, is copied to ``copy_to`` (see
    :func:`copy_model` for ``force``), is evaluated on the test split, and ``summary.json``,
    the ledger row and the figures are written (by rank 0; every replica evaluates its
    shard)."""
    cfg, data = setup.config, setup.data
    writes = replicas.rank == 0
    best_path = None  # only rank 0 wrote it: it decides, and sends the weights
    if writes and setup.best_path.exists():
        best_path = setup.best_path
    best_path = replicas.broadcast(best_path)
    if best_path is not None:
        if writes:
            _, params, state = checkpoint.build(checkpoint.load(best_path))
        params, state = replicas.broadcast((params, state))
    fitted = None
    if writes:
        fitted = finalize_model(
            setup.recipe.net, params, state, data, FitRequest.of(cfg), best_path or setup.last_path
        )
    cal, rule, lines = replicas.broadcast(fitted)
    copy = copy_model(best_path, copy_to, monitor, force) if writes and best_path else None
    for line in [*lines, *([copy[1]] if copy else [])]:
        log.info(line)
        echo(line)
    test = evaluate(
        setup.recipe.net,
        params,
        state,
        data.test.images,
        data.test.labels,
        data.normalization,
        cfg.train.eval_batch_size,
        replicas,
        tta=cfg.evaluate.tta,
    )
    preds = rule.decide(cal.probabilities(test.logits))
    confusion = metrics.confusion_matrix(test.labels, preds, data.test.num_classes)
    test_acc = metrics.accuracy(confusion)
    best_val = max((h["val_acc"] for h in history), default=float("nan"))
    source = "best checkpoint" if keep == "best" else "last epoch"
    source = source if best_path else "final params"
    balanced = metrics.balanced_accuracy(confusion)
    with_tta = f", test-time augmentation level {cfg.evaluate.tta}" if cfg.evaluate.tta else ""
    line = (
        f"test accuracy {test_acc:.4f}, balanced {balanced:.4f} ({source}{with_tta}); "
        f"best val_acc {best_val:.4f}; wall time {elapsed_s:.0f}s"
    )
    log.info(line)
    echo(line)
    summary = {
        "test_acc": test_acc,
        "test_balanced_acc": balanced,
        "test_loss": test.loss,
        "best_val_acc": best_val,
        "epochs_run": len(history),
        "wall_time_s": elapsed_s,
        "processes": replicas.size,
        "calibration": cal.to_dict(),
        "decision": rule.to_dict(),
        "best_checkpoint": str(best_path) if best_path else None,
        "model_copy": str(copy[0]) if copy and copy[0] else None,
    }
    if writes:
        atomic_write_text(setup.run_dir / "summary.json", json.dumps(summary, indent=2))
        written = write_reports(
            cfg, setup.run_dir, history, confusion, data.test.class_names, test_acc, best_val,
            elapsed_s,
        )  # fmt: skip
        files = [setup.run_dir / "summary.json", *written]
        echo("wrote " + ", ".join(str(f) for f in files))
    return RunResult(
        setup.run_dir,
        history,
        best_path,
        setup.last_path,
        test_acc,
        confusion,
        elapsed_s,
        stopped_early,
    )

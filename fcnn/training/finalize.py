"""After training: fit calibration, the decision rule and the out-of-distribution detector
on the validation split and store them in the model file (the best checkpoint, else
``last.npz``); write the run's ledger row and figures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, NamedTuple

import attrs
import numpy as np

from fcnn import calibration, checkpoint, decision, ood
from fcnn.layers import Layer
from fcnn.training import reports
from fcnn.training.config import Config
from fcnn.training.data import PreparedData
from fcnn.training.loop import evaluate, features

__all__ = ["Finalized", "finalize_model", "write_reports"]


class Finalized(NamedTuple):
    calibration: calibration.Calibration
    decision: decision.DecisionRule
    lines: list[str]  # what was fitted, for the log


def finalize_model(
    net: Layer, params: Any, state: Any, data: PreparedData, config: Config, model_path: Path
) -> Finalized:
    """Fit what ``config`` asks for (``calibration``, ``decision``, ``ood_quantile``) and
    rewrite ``model_path`` with it; returns them and lines describing what was done."""
    wants_decision = config.decision.rule != "argmax"
    if config.calibration == "none" and config.ood_quantile is None and not wants_decision:
        return Finalized(calibration.Calibration(), decision.DecisionRule(), [])
    batch = config.train.eval_batch_size
    val = evaluate(net, params, state, data.val.images, data.val.labels, data.normalization, batch)
    cal = calibration.fit(val.logits, val.labels, config.calibration)
    before = calibration.nll(val.logits, val.labels)
    after = calibration.nll(cal.apply(val.logits.astype(np.float64)), val.labels)
    rule = decision.DecisionRule()
    lines = [
        f"calibration ({cal.method}, T={cal.temperature:.3f}) fitted on validation: "
        f"NLL {before:.4f} -> {after:.4f}"
    ]
    if wants_decision:
        counts = data.train.class_counts().astype(np.float64)
        names = list(data.train.class_names)
        unknown = sorted(set(config.decision.min_recall) - set(names))
        if unknown:
            raise ValueError(
                f"decision.min_recall names {unknown}, which are not classes of "
                f"{config.dataset}: {names}"
            )
        rule, table = decision.fit_prior_correction(
            cal.probabilities(val.logits.astype(np.float64)),
            val.labels,
            np.maximum(counts, 1.0) / counts.sum(),
            config.decision.min_accuracy,
            min_recall={names.index(n): f for n, f in config.decision.min_recall.items()},
        )
        chosen = next(row for row in table if row["alpha"] == rule.alpha)
        floors = f"accuracy floor {config.decision.min_accuracy}" + "".join(
            f", {n} recall floor {f}" for n, f in config.decision.min_recall.items()
        )
        met = (
            ""
            if chosen["meets"]
            else "; no exponent met the recall floors, so they were dropped"
            if chosen["meets_accuracy"]
            else "; no exponent met the accuracy floor, so plain argmax"
        )
        lines.append(
            f"decision rule (prior exponent {rule.alpha:.2f}) fitted on validation: accuracy "
            f"{chosen['accuracy']:.4f}, balanced accuracy {chosen['balanced_accuracy']:.4f} "
            f"({floors}{met})"
        )
    fitted: dict[str, Any] = {"calibration": cal.to_dict(), "decision": rule.to_dict()}
    trees_extra: dict[str, Any] = {}
    if config.ood_quantile is not None:
        detector = ood.fit(
            features(net, params, state, data.train.images, data.normalization, batch),
            data.train.labels,
            data.train.images,
            features(net, params, state, data.val.images, data.normalization, batch),
            config.ood_quantile,
            data.train.num_classes,
        )
        fitted["ood"], trees_extra["ood"] = detector.to_manifest()
        lines.append(
            f"out-of-distribution detector: distance threshold {detector.threshold:.1f} "
            f"(validation quantile {config.ood_quantile})"
        )
    stored = checkpoint.load(model_path)
    groups = {key.split("/", 1)[0] for key in stored.arrays}
    trees: dict[str, Any] = {g: stored.group(g) for g in groups}  # keep what is not refitted
    trees.update(params=params, state=state, **trees_extra)  # a refit replaces the old one
    checkpoint.save(model_path, attrs.evolve(stored.info, **fitted), **trees)
    return Finalized(cal, rule, [f"{line}; stored in {model_path}" for line in lines])


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
            "model": config.model,
            "seed": config.seed,
            "epochs": len(history),
            "best_val_acc": f"{best_val:.4f}",
            "test_acc": f"{test_acc:.4f}",
            "wall_time_s": f"{wall:.1f}",
            "run_dir": str(run_dir),
        },
    )
    title = f"{config.name} ({config.model}, seed {config.seed})"
    written = [ledger]
    if history:
        written.append(reports.plot_curves(history, run_dir / "figures" / "curves.png", title))
    written.append(
        reports.plot_confusion(
            confusion, class_names, run_dir / "figures" / "confusion.png", f"{title}: test split"
        )
    )
    return written

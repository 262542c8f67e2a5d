"""The end of a run: fit calibration, the decision rule and the out-of-distribution
detector on the validation split and store them in the model file (the best checkpoint,
else ``last.npz``); copy the model where the config asks; evaluate it on the test split;
write ``summary.json``, the run's ledger row and figures (:func:`finish_run`)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import attrs
import numpy as np

from fcnn import calibration, checkpoint, decision, distributed, metrics, ood
from fcnn.io import atomic_write, atomic_write_text
from fcnn.layers import Layer
from fcnn.training import reports
from fcnn.training.config import Config
from fcnn.training.data import PreparedData
from fcnn.training.loop import evaluate, features
from fcnn.training.setup import Setup

__all__ = ["Finalized", "RunResult", "copy_model", "finalize_model", "finish_run", "write_reports"]

log = logging.getLogger("fcnn.train")


class Finalized(NamedTuple):
    calibration: calibration.Calibration
    decision: decision.DecisionRule
    lines: list[str]  # what was fitted, for the log


def finalize_model(
    net: Layer, params: Any, state: Any, data: PreparedData, config: Config, model_path: Path
) -> Finalized:
    """Fit what ``config`` asks for (``calibration``, ``decision``, ``screening_sensitivity``,
    ``ood_quantile``, ``uncertain_share``) and rewrite ``model_path`` with it; returns them and
    lines describing what was done."""
    wants_decision = config.decision.rule != "argmax"
    wants_screening = config.screening_sensitivity is not None
    wants_uncertain = config.uncertain_share is not None
    if (
        config.calibration == "none"
        and config.ood_quantile is None
        and not (wants_decision or wants_screening or wants_uncertain)
    ):
        return Finalized(calibration.Calibration(), decision.DecisionRule(), [])
    batch = config.train.eval_batch_size
    val = evaluate(net, params, state, data.val.images, data.val.labels, data.normalization, batch)
    cal = calibration.fit(val.logits, val.labels, config.calibration)
    before = calibration.nll(val.logits, val.labels)
    after = calibration.nll(cal.apply(val.logits.astype(np.float64)), val.labels)
    val_probs = cal.probabilities(val.logits.astype(np.float64))  # (N, K), calibrated
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
            val_probs,
            val.labels,
            np.maximum(counts, 1.0) / counts.sum(),
            config.decision.min_accuracy,
            min_recall={names.index(n): f for n, f in config.decision.min_recall.items()},
        )
        chosen = decision.chosen_row(rule, table)
        floors = f"accuracy floor {config.decision.min_accuracy}" + "".join(
            f", {n} recall floor {f}" for n, f in config.decision.min_recall.items()
        )
        met = (
            ""
            if chosen["meets"]
            else "; no exponent and boost met the recall floors, so they were dropped"
            if chosen["meets_accuracy"]
            else "; no exponent met the accuracy floor, so plain argmax"
        )
        boost = "".join(f", {names[c]} ×{rule.boost:.2f}" for c in rule.boosted)
        lines.append(
            f"decision rule (prior exponent {rule.alpha:.2f}{boost}) fitted on validation: "
            f"accuracy {chosen['accuracy']:.4f}, "
            f"balanced accuracy {chosen['balanced_accuracy']:.4f} ({floors}{met})"
        )
    fitted: dict[str, Any] = {"calibration": cal.to_dict(), "decision": rule.to_dict()}
    stored = checkpoint.load(model_path)
    trees_extra: dict[str, Any] = {}
    detector = (
        ood.OodDetector.from_manifest(stored.info.ood, stored.group("ood"))
        if stored.info.ood is not None
        else None
    )
    if config.ood_quantile is not None or (wants_uncertain and detector is not None):
        val_features = features(net, params, state, data.val.images, data.normalization, batch)
    if config.ood_quantile is not None:
        detector = ood.fit(
            features(net, params, state, data.train.images, data.normalization, batch),
            data.train.labels,
            data.train.images,
            val_features,
            config.ood_quantile,
            data.train.num_classes,
        )
        fitted["ood"], trees_extra["ood"] = detector.to_manifest()
        lines.append(
            f"out-of-distribution detector: distance threshold {detector.threshold:.1f} "
            f"(validation quantile {config.ood_quantile})"
        )
    if wants_screening or wants_uncertain:
        class_names = tuple(data.train.class_names)
        rules = _answer_rules(config, class_names)
        if wants_screening:
            rules, line = _fit_screening(config, rules, val_probs, val.labels, class_names)
            lines.append(line)
        if wants_uncertain:
            far = np.zeros(len(val_probs), bool)  # (N,): out of distribution
            if detector is not None:  # answered "uncertain" too, so they count in the share
                reasons = detector.reasons(data.val.images, val_features)
                far = np.array([r is not None for r in reasons])
            rules, line = _fit_uncertain(config.uncertain_share, rules, val_probs, far)
            lines.append(line)
        fitted["answer_rules"] = rules.to_dict()
    groups = {key.split("/", 1)[0] for key in stored.arrays}
    trees: dict[str, Any] = {g: stored.group(g) for g in groups}  # keep what is not refitted
    trees.update(params=params, state=state, **trees_extra)  # a refit replaces the old one
    checkpoint.save(model_path, attrs.evolve(stored.info, **fitted), **trees)
    return Finalized(cal, rule, [f"{line}; stored in {model_path}" for line in lines])


def _answer_rules(config: Config, names: tuple[str, ...]) -> decision.AnswerRules:
    """The config's answer rules (none yet: the defaults), to refit thresholds of."""
    rules = config.answer_rules or decision.AnswerRules()
    unknown = sorted(set(rules.high_risk_classes) - set(names))
    if unknown:
        raise ValueError(
            f"answer_rules.high_risk_classes names {unknown}, which are not classes: {list(names)}"
        )
    return rules


def _fit_screening(
    config: Config,
    rules: decision.AnswerRules,
    probs: np.ndarray,
    labels: np.ndarray,
    names: tuple[str, ...],
) -> tuple[decision.AnswerRules, str]:
    """``rules`` with ``high_risk_at`` fitted on the validation ``probs`` (N, K) and
    ``labels`` for ``config.screening_sensitivity``, and a line saying so."""
    if not rules.high_risk_classes:
        raise ValueError(
            "screening_sensitivity fits answer_rules.high_risk_at, so the config needs an "
            "answer_rules section naming high_risk_classes"
        )
    risk = np.array([rules.high_risk_probability(p, names) for p in probs])  # (N,)
    positive = np.isin(labels, [names.index(c) for c in rules.high_risk_classes])  # (N,)
    threshold = decision.fit_screening_threshold(risk, positive, config.screening_sensitivity)
    flagged = risk >= threshold
    line = (
        f"screening operating point high_risk_at={threshold:.4f} fitted on validation: "
        f"{'+'.join(rules.high_risk_classes)} lesions flagged high "
        f"{flagged[positive].mean():.3f} (asked {config.screening_sensitivity}), other "
        f"lesions flagged high {flagged[~positive].mean() if (~positive).any() else 0.0:.3f}"
    )
    return attrs.evolve(rules, high_risk_at=threshold), line


def _fit_uncertain(
    share: float, rules: decision.AnswerRules, probs: np.ndarray, far: np.ndarray
) -> tuple[decision.AnswerRules, str]:
    """``rules`` with ``uncertain_below`` fitted on the validation ``probs`` (N, K) so that at
    most ``share`` of the lesions are answered uncertain, the ``far`` (N,) ones (out of
    distribution) included, and a line saying so."""
    top = probs.max(axis=1)  # (N,)
    threshold = decision.fit_uncertain_threshold(top, far, share)
    uncertain = far | (top < threshold)
    line = (
        f"uncertain threshold uncertain_below={threshold:.4f} fitted on validation: "
        f"{uncertain.mean():.3f} of the lesions answered uncertain (asked at most {share}; "
        f"{far.mean():.3f} out of distribution)"
    )
    return attrs.evolve(rules, uncertain_below=threshold), line


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
    force: bool = False,
    copy_to: str | None,
    elapsed_s: float,
    stopped_early: bool,
    replicas: distributed.Replicas,
    echo: Callable[[str], None],
) -> RunResult:
    """The end of a run: the run's best model by ``monitor`` (``<run>/best.npz``; the final
    ``params`` when no epoch was validated) gets its calibration and decision rule fitted, is
    copied to ``copy_to`` (see :func:`copy_model` for ``force``), is evaluated on the test
    split, and ``summary.json``, the ledger row and the figures are written (by rank 0; every
    replica evaluates its shard)."""
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
            setup.recipe.net, params, state, data, cfg, best_path or setup.last_path
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
    )
    preds = rule.decide(cal.probabilities(test.logits))
    confusion = metrics.confusion_matrix(test.labels, preds, data.test.num_classes)
    test_acc = metrics.accuracy(confusion)
    best_val = max((h["val_acc"] for h in history), default=float("nan"))
    source = "best checkpoint" if best_path else "final params"
    balanced = metrics.balanced_accuracy(confusion)
    line = (
        f"test accuracy {test_acc:.4f}, balanced {balanced:.4f} ({source}); "
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

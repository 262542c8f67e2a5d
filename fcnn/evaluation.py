"""Evaluation of a trained model on a labelled data set: every metric in one report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fcnn import metrics
from fcnn.data.dataset import Dataset
from fcnn.decision import DecisionRule
from fcnn.inference import Model
from fcnn.layers.activations import softmax

__all__ = ["age_band", "evaluate_model", "plot_reliability", "report_markdown"]

AGE_BANDS = (
    (0, 30, "<30"),
    (30, 45, "30-44"),
    (45, 60, "45-59"),
    (60, 75, "60-74"),
    (75, 200, "75+"),
)


def age_band(age: float) -> str:
    """The label of the band of :data:`AGE_BANDS` that ``age`` falls in ("unknown" for NaN)."""
    if not np.isfinite(age):
        return "unknown"
    return next(label for lo, hi, label in AGE_BANDS if lo <= age < hi)


def _softmax(logits: np.ndarray) -> np.ndarray:
    return softmax(logits.astype(np.float64))


def _summary(labels: np.ndarray, probs: np.ndarray, preds: np.ndarray, k: int) -> dict[str, Any]:
    confusion = metrics.confusion_matrix(labels, preds, k)
    _, macro_auc = metrics.roc_auc_ovr(labels, probs)
    return {
        "n": int(labels.size),
        "accuracy": metrics.accuracy(confusion),
        "balanced_accuracy": metrics.balanced_accuracy(confusion),
        "macro_auc": None if np.isnan(macro_auc) else macro_auc,
    }


def _subgroups(
    data: Dataset, probs: np.ndarray, preds: np.ndarray, min_n: int = 20
) -> dict[str, Any]:
    """Metrics per sex, age band and body site (groups of at least ``min_n`` images)."""
    columns = {}
    if "sex" in data.meta:
        columns["sex"] = data.meta["sex"]
    if "age" in data.meta:
        columns["age_band"] = np.array([age_band(a) for a in data.meta["age"]])
    if "localization" in data.meta:
        columns["body_site"] = data.meta["localization"]
    out: dict[str, Any] = {}
    for name, column in columns.items():
        groups = {}
        for value in sorted(set(column.tolist())):
            members = column == value
            if members.sum() >= min_n:
                groups[str(value)] = _summary(
                    data.labels[members], probs[members], preds[members], data.num_classes
                )
        out[name] = groups
    return out


def evaluate_model(model: Model, data: Dataset, batch_size: int = 500) -> dict[str, Any]:
    """Accuracy, balanced accuracy, per-class precision/recall/F1/AUC, ECE (15 bins) before
    and after calibration, NLL, the confusion matrix and per-subgroup metrics, as JSON-able data.

    The answered class is the model's decision rule applied to the calibrated probabilities
    (their argmax unless the model stores a prior correction); ECE, NLL and AUC are
    properties of the probabilities themselves."""
    if tuple(data.class_names) != tuple(model.class_names):
        raise ValueError(
            f"the model's classes {list(model.class_names)} differ from the data set's "
            f"{list(data.class_names)}"
        )
    raw = model.raw_logits(data.images, batch_size)
    calibrated = model.calibration.apply(raw)
    probs, raw_probs = _softmax(calibrated), _softmax(raw)
    k = len(model.class_names)
    preds = model.decision.decide(probs)
    confusion = metrics.confusion_matrix(data.labels, preds, k)
    precision, recall, f1 = metrics.precision_recall_f1(confusion)
    auc, macro_auc = metrics.roc_auc_ovr(data.labels, probs)
    support = confusion.sum(axis=1)
    log_p = np.log(np.clip(probs[np.arange(len(data)), data.labels], 1e-12, None))
    raw_log_p = np.log(np.clip(raw_probs[np.arange(len(data)), data.labels], 1e-12, None))
    return {
        "n": len(data),
        "accuracy": metrics.accuracy(confusion),
        "balanced_accuracy": metrics.balanced_accuracy(confusion),
        "macro_auc": macro_auc,
        "ece": metrics.expected_calibration_error(data.labels, probs),
        "ece_uncalibrated": metrics.expected_calibration_error(data.labels, raw_probs),
        "nll": float(-log_p.mean()),
        "nll_uncalibrated": float(-raw_log_p.mean()),
        "calibration": model.calibration.to_dict(),
        "decision": model.decision.to_dict(),
        "per_class": [
            {
                "class": name,
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "auc": None if np.isnan(auc[i]) else float(auc[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(model.class_names)
        ],
        "confusion_matrix": confusion.tolist(),
        "class_names": list(model.class_names),
        "subgroups": _subgroups(data, probs, preds),
        "_probs": probs,  # for figures; dropped before JSON
        "_raw_probs": raw_probs,
        "_labels": data.labels,
    }


def plot_reliability(report: dict[str, Any], path: Path, title: str, bins: int = 15) -> None:
    """Reliability diagram (accuracy against confidence per bin), before and after calibration."""
    from fcnn.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    edges = np.linspace(0, 1, bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    labels = report["_labels"]
    for key, name, ece_key in (
        ("_raw_probs", "uncalibrated", "ece_uncalibrated"),
        ("_probs", "calibrated", "ece"),
    ):
        probs = report[key]
        conf, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
        which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
        acc = [correct[which == b].mean() if np.any(which == b) else np.nan for b in range(bins)]
        ax.plot(centers, acc, "o-", label=f"{name} (ECE {report[ece_key]:.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set(
        xlabel="confidence (top probability)",
        ylabel="accuracy",
        title=title,
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    save_figure(fig, path, plt)


def report_markdown(report: dict[str, Any]) -> str:
    """The report's metrics as Markdown tables (overall, per class, per subgroup)."""

    def num(v: float | None, digits: int = 3) -> str:
        return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"

    rule = DecisionRule.from_dict(report.get("decision"))
    lines = [
        "| metric | value |",
        "| --- | --- |",
        f"| images | {report['n']} |",
        f"| answered class | {rule.describe(report['class_names'])} |",
        f"| accuracy | {num(report['accuracy'])} |",
        f"| balanced accuracy (mean recall) | {num(report['balanced_accuracy'])} |",
        f"| macro ROC AUC (one-vs-rest) | {num(report['macro_auc'])} |",
        f"| ECE, 15 bins (uncalibrated → calibrated) | {num(report['ece_uncalibrated'])} → "
        f"{num(report['ece'])} |",
        f"| NLL (uncalibrated → calibrated) | {num(report['nll_uncalibrated'])} → "
        f"{num(report['nll'])} |",
        "",
        "| class | precision | recall | F1 | AUC | support |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["per_class"]:
        lines.append(
            f"| {row['class']} | {num(row['precision'])} | {num(row['recall'])} | "
            f"{num(row['f1'])} | {num(row['auc'])} | {row['support']} |"
        )
    for column, groups in report.get("subgroups", {}).items():
        lines += [
            "",
            f"| {column.replace('_', ' ')} | n | accuracy | balanced accuracy | macro AUC |",
            "| --- | --- | --- | --- | --- |",
        ]
        for value, m in groups.items():
            lines.append(
                f"| {value} | {m['n']} | {num(m['accuracy'])} | "
                f"{num(m['balanced_accuracy'])} | {num(m['macro_auc'])} |"
            )
    return "\n".join(lines) + "\n"

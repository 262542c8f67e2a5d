"""Classification metrics in NumPy: confusion matrix, accuracy, balanced accuracy,
per-class precision / recall / F1, one-vs-rest ROC AUC, expected calibration error, and
percentile bootstrap intervals of any of them.

Conventions: ``labels`` are (N,) ints, ``probs`` are (N, K) rows summing to 1;
``confusion[i, j]`` counts examples of true class ``i`` predicted as ``j``. A ratio
with an empty denominator is reported as 0 (and AUC of a class with no positives
or no negatives as NaN).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "accuracy",
    "balanced_accuracy",
    "bootstrap_interval",
    "confusion_matrix",
    "expected_calibration_error",
    "precision_recall_f1",
    "roc_auc_ovr",
]


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) int64 counts; rows are true classes, columns predictions."""
    idx = np.asarray(labels, np.int64) * num_classes + np.asarray(preds, np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(np.shape(num), np.float64), where=den > 0)


def accuracy(confusion: np.ndarray) -> float:
    """The share of the confusion matrix on its diagonal (0 for an empty one)."""
    total = confusion.sum()
    return float(np.trace(confusion) / total) if total else 0.0


def precision_recall_f1(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1, each (K,)."""
    tp = np.diag(confusion).astype(np.float64)
    precision = _safe_div(tp, confusion.sum(axis=0))
    recall = _safe_div(tp, confusion.sum(axis=1))
    f1 = _safe_div(2 * precision * recall, precision + recall)
    return precision, recall, f1


def balanced_accuracy(confusion: np.ndarray) -> float:
    """Mean recall over the classes that occur in the labels."""
    support = confusion.sum(axis=1)
    recall = _safe_div(np.diag(confusion).astype(np.float64), support)
    return float(recall[support > 0].mean()) if np.any(support > 0) else 0.0


def _binary_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUC with average ranks for ties."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(scores.size, np.float64)
    # average rank (1-based) over each run of equal scores
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], scores.size]
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + 1 + e) / 2.0
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_auc_ovr(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, float]:
    """One-vs-rest ROC AUC per class (K,) and their macro mean over the defined ones."""
    labels = np.asarray(labels)
    per_class = np.array([_binary_auc(probs[:, k], labels == k) for k in range(probs.shape[1])])
    defined = per_class[~np.isnan(per_class)]
    return per_class, float(defined.mean()) if defined.size else float("nan")


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """ECE over ``bins`` equal-width confidence bins of the top-class probability."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - conf[members].mean())
    return float(ece)


def bootstrap_interval(
    statistic: Callable[..., float],
    *arrays: np.ndarray,
    rounds: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """A percentile bootstrap interval of ``statistic(*arrays)``: the statistic is recomputed
    on ``rounds`` resamples (with replacement) of the cases, the rows of every array drawn
    together, and the central ``level`` of those values is returned as (low, high).

    Resamples on which the statistic is undefined (NaN, say no positive case) are left out.
    Seeded, so a report's interval is reproducible.
    """
    if not arrays:
        raise ValueError("bootstrap_interval needs at least one array of cases")
    n = len(arrays[0])
    if n == 0 or any(len(a) != n for a in arrays):
        raise ValueError(
            f"the arrays must hold the same, non-zero number of cases: {[len(a) for a in arrays]}"
        )
    rng = np.random.default_rng(seed)
    values = np.array(
        [statistic(*(a[idx] for a in arrays)) for idx in rng.integers(0, n, size=(rounds, n))]
    )
    values = values[~np.isnan(values)]
    if values.size == 0:
        raise ValueError("the statistic was undefined on every resample")
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)

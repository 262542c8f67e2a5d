"""Evaluation of a trained model on a labelled data set: every metric in one report."""

from __future__ import annotations

from typing import Any

import numpy as np

from fcnn import metrics
from fcnn.data.dataset import Dataset
from fcnn.inference import Model

__all__ = ["evaluate_model"]


def evaluate_model(model: Model, data: Dataset, batch_size: int = 500) -> dict[str, Any]:
    """Accuracy, balanced accuracy, per-class precision/recall/F1, ROC AUC, ECE and the
    confusion matrix, as plain JSON-able data."""
    if tuple(data.class_names) != tuple(model.class_names):
        raise ValueError(
            f"the model's classes {list(model.class_names)} differ from the data set's "
            f"{list(data.class_names)}"
        )
    probs = model.predict(data.images, batch_size)
    preds = probs.argmax(axis=1)
    k = len(model.class_names)
    confusion = metrics.confusion_matrix(data.labels, preds, k)
    precision, recall, f1 = metrics.precision_recall_f1(confusion)
    auc, macro_auc = metrics.roc_auc_ovr(data.labels, probs)
    support = confusion.sum(axis=1)
    return {
        "n": len(data),
        "accuracy": metrics.accuracy(confusion),
        "balanced_accuracy": metrics.balanced_accuracy(confusion),
        "macro_auc": macro_auc,
        "ece": metrics.expected_calibration_error(data.labels, probs),
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
    }

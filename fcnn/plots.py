"""Figures as PNG files (matplotlib, Agg backend, written atomically): training curves,
confusion matrices, and the figure helpers other modules draw with."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fcnn.io import atomic_write

__all__ = ["plot_confusion", "plot_curves", "pyplot", "save_figure"]


def pyplot():
    """matplotlib.pyplot with the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: Sequence[dict[str, float]], path: Path, title: str) -> Path:
    """Loss and accuracy per epoch (train and validation) as one PNG; returns ``path``."""
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax_loss.plot(epochs, [h["val_loss"] for h in history], "o-", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.plot(epochs, [h["train_acc"] for h in history], "o-", label="train")
    ax_acc.plot(epochs, [h["val_acc"] for h in history], "o-", label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path, plt)


def plot_confusion(
    confusion: np.ndarray, class_names: Sequence[str], path: Path, title: str
) -> Path:
    """Row-normalized confusion matrix with counts, as a PNG; returns ``path``."""
    plt = pyplot()
    k = len(class_names)
    rows = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * k, 0.8 + 0.6 * k))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                str(confusion[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if share[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(k), class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return save_figure(fig, path, plt)


def save_figure(fig, path: Path, plt) -> Path:
    """Write ``fig`` to ``path`` as PNG atomically, close it; returns ``path``."""
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)

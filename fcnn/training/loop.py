"""The pure pieces of training: one optimization step and a batched evaluation.

``train_step`` takes everything it needs as arguments and returns new values;
it never mutates params, state or optimizer state, so a step is reproducible
from its arguments (the key included).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import numpy as np

from fcnn import explain, optim
from fcnn import random as fr
from fcnn.data.transforms import Augmentation, Normalization, augment, normalize
from fcnn.layers import Layer
from fcnn.losses import cross_entropy

__all__ = [
    "EvalResult",
    "StepResult",
    "Trainer",
    "evaluate",
    "features",
    "predict_logits",
    "train_step",
]


@attrs.frozen(eq=False)
class Trainer:
    """The fixed ingredients of a training step."""

    net: Layer
    optimizer: optim.GradientTransformation
    normalization: Normalization
    augmentation: Augmentation = Augmentation()
    class_weights: np.ndarray | None = None
    label_smoothing: float = 0.0


class StepResult(NamedTuple):
    params: Any
    state: Any
    opt_state: Any
    loss: float
    correct: int


def train_step(
    trainer: Trainer,
    params: Any,
    state: Any,
    opt_state: Any,
    images: np.ndarray,
    labels: np.ndarray,
    key: fr.Key,
) -> StepResult:
    """One SGD step on a uint8 batch: normalize, augment, forward, loss, backward, update."""
    aug_key, net_key = fr.split(key, 2)
    x = augment(normalize(images, trainer.normalization), trainer.augmentation, aug_key)
    logits, cache, new_state = trainer.net.apply(params, x, state=state, train=True, key=net_key)
    loss, loss_cache = cross_entropy.forward(
        logits, labels, class_weights=trainer.class_weights, label_smoothing=trainer.label_smoothing
    )
    _, grads = trainer.net.backward(
        params, cache, cross_entropy.backward(loss_cache), need_dx=False
    )
    updates, new_opt_state = trainer.optimizer.update(grads, opt_state, params)
    new_params = optim.apply_updates(params, updates)
    correct = int(np.sum(logits.argmax(axis=1) == labels))
    return StepResult(new_params, new_state, new_opt_state, float(loss), correct)


def predict_logits(
    net: Layer,
    params: Any,
    state: Any,
    images: np.ndarray,
    normalization: Normalization,
    batch_size: int = 500,
) -> np.ndarray:
    """Eval-mode logits of raw-pixel ``images`` (N, C, H, W), normalized batch by batch
    (so a whole data set is never held as float32 at once)."""
    outs = [
        net.apply(
            params, normalize(images[i : i + batch_size], normalization), state=state, train=False
        )[0]
        for i in range(0, images.shape[0], batch_size)
    ]
    return np.concatenate(outs)


class EvalResult(NamedTuple):
    loss: float  # mean unweighted cross-entropy
    logits: np.ndarray  # (N, K)
    labels: np.ndarray  # (N,)

    @property
    def preds(self) -> np.ndarray:
        return self.logits.argmax(axis=1)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.preds == self.labels)) if self.labels.size else 0.0


def evaluate(
    net: Layer,
    params: Any,
    state: Any,
    images: np.ndarray,
    labels: np.ndarray,
    normalization: Normalization,
    batch_size: int = 500,
) -> EvalResult:
    """Loss and logits of uint8 ``images`` in eval mode, normalized batch by batch."""
    logits = predict_logits(net, params, state, images, normalization, batch_size)
    loss, _ = cross_entropy.forward(logits.astype(np.float64), labels)
    return EvalResult(float(loss), logits, labels)


def features(
    net: Layer,
    params: Any,
    state: Any,
    images: np.ndarray,
    normalization: Normalization,
    batch_size: int = 500,
) -> np.ndarray:
    """Penultimate (pooled) features of uint8 ``images``, normalized batch by batch."""
    parts = [
        explain.features(net, params, state, normalize(images[i : i + batch_size], normalization))
        for i in range(0, images.shape[0], batch_size)
    ]
    return np.concatenate(parts)

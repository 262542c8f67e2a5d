"""The pure pieces of training: one optimization step and a batched evaluation.

``train_step`` takes everything it needs as arguments and returns new values;
it never mutates params, state or optimizer state, so a step is reproducible
from its arguments (the key included).

Data-parallel steps: given :class:`~fcnn.distributed.Replicas` of size N, every
replica receives the same global batch and key, normalizes and augments the whole
batch (so each image gets the same transform as in a one-process run), runs the
network on its own shard only, and weighs its loss by the whole batch's total
weight; one sum over the replicas of (gradients, loss, correct) in a single flat
buffer then gives every replica the one-process gradient, and every replica
applies the same update. Dropout masks are drawn per replica (the key is folded
with the rank), so nets with dropout train equivalently but not bit-identically.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import numpy as np

from fcnn import distributed, optim, tree
from fcnn import random as fr
from fcnn.data.transforms import Augmentation, Normalization, augment, normalize
from fcnn.layers import Layer
from fcnn.layers.batchnorm import cross_replica_sum
from fcnn.losses import cross_entropy
from fcnn.predict import features, predict_logits

__all__ = [
    "EvalResult",
    "FrozenPrefix",
    "Recipe",
    "StepResult",
    "evaluate",
    "features",
    "train_step",
]


class FrozenPrefix(NamedTuple):
    """A serial network cut after its first ``count`` layers, which train.freeze holds
    fixed: ``prefix`` runs them in inference mode without backward, ``rest`` the others
    (:mod:`fcnn.training.finetune`)."""

    count: int
    prefix: Layer
    rest: Layer


@attrs.frozen(eq=False)
class Recipe:
    """The fixed ingredients of a training step."""

    net: Layer
    optimizer: optim.GradientTransformation
    normalization: Normalization
    augmentation: Augmentation = Augmentation()
    class_weights: np.ndarray | None = None
    label_smoothing: float = 0.0
    sync_batchnorm: bool = False  # with several replicas: BatchNorm statistics of the whole batch
    # the network's first layers when they are frozen whole (train.freeze): run forward-only
    frozen: FrozenPrefix | None = None


class StepResult(NamedTuple):
    params: Any
    state: Any
    opt_state: Any
    loss: float
    correct: int


def _batch_weight(recipe: Recipe, labels: np.ndarray) -> float:
    """Σ of the loss weights of a batch's labels (its size without class weights)."""
    if recipe.class_weights is None:
        return float(labels.shape[0])
    return float(np.asarray(recipe.class_weights, np.float64)[labels].sum())


def train_step(
    recipe: Recipe,
    params: Any,
    state: Any,
    opt_state: Any,
    images: np.ndarray,
    labels: np.ndarray,
    key: fr.Key,
    replicas: distributed.Replicas = distributed.SINGLE,
    flips: np.ndarray | None = None,
) -> StepResult:
    """One SGD step on a uint8 batch: normalize, augment, forward, loss, backward, update.

    With several ``replicas`` every one of them calls this with the same global batch
    and key; each computes its shard and the results are summed (see the module
    docstring). The returned loss and count of correct answers are the whole batch's.
    ``flips``: which images of the batch ``alternating_flip`` mirrors (the whole batch's).
    """
    aug_key, net_key = fr.split(key, 2)
    total_weight = _batch_weight(recipe, labels)
    batch = labels.shape[0]
    each_takes_all = replicas.size > 1 and batch < replicas.size
    part = slice(None)
    if each_takes_all:  # fewer images than replicas: each takes all, a 1/N share of the loss
        total_weight *= replicas.size
    elif replicas.size > 1:
        part = distributed.shard_slice(batch, replicas.rank, replicas.size)
        images, labels = images[part], labels[part]
    # each replica normalizes and augments only its shard, with the whole batch's draws
    x = augment(
        normalize(images, recipe.normalization),
        recipe.augmentation,
        aug_key,
        rows=part,
        batch=batch,
        flips=flips,
    )
    if replicas.size > 1:
        net_key = fr.fold_in(net_key, replicas.rank)
    sync = recipe.sync_batchnorm and replicas.size > 1
    with cross_replica_sum(replicas.sum if sync else None):
        logits, loss, grads, new_state = _forward_backward(
            recipe, params, state, x, labels, net_key, total_weight
        )
    correct = (
        int(np.sum(logits.argmax(axis=1) == labels))
        if not each_takes_all or replicas.rank == 0
        else 0
    )
    loss = float(loss)
    if replicas.size > 1:
        # one reduction: (all gradient leaves, loss, correct) as a flat float32 buffer
        buf, layout = distributed.to_buffer(grads, extra=np.array([loss, correct]))
        grads, extra = distributed.from_buffer(replicas.sum(buf), layout)
        loss, correct = float(extra[0]), round(float(extra[1]))
    updates, new_opt_state = recipe.optimizer.update(grads, opt_state, params)
    new_params = optim.apply_updates(params, updates)
    return StepResult(new_params, new_state, new_opt_state, loss, correct)


def _forward_backward(recipe, params, state, x, labels, key, total_weight):
    """(logits, loss, grads, new state) of one training batch ``x``; a frozen prefix of the
    network runs in inference mode and gets zero gradients without a backward pass."""
    frozen = recipe.frozen
    net, trained_params, trained_state = recipe.net, params, state
    if frozen is not None:
        k = frozen.count
        x, _, _ = frozen.prefix.apply(params[:k], x, state=state[:k], train=False)
        net, trained_params, trained_state = frozen.rest, params[k:], state[k:]
    logits, cache, new_state = net.apply(
        trained_params, x, state=trained_state, train=True, key=key
    )
    loss, loss_cache = cross_entropy.forward(
        logits,
        labels,
        class_weights=recipe.class_weights,
        label_smoothing=recipe.label_smoothing,
        weight_total=total_weight,
    )
    _, grads = net.backward(
        trained_params, cache, cross_entropy.backward(loss_cache), need_dx=False
    )
    if frozen is not None:
        grads = tree.zeros_like(params[:k]) + grads
        new_state = state[:k] + new_state
    return logits, loss, grads, new_state


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
    replicas: distributed.Replicas = distributed.SINGLE,
    tta: int = 0,
) -> EvalResult:
    """Loss and logits of uint8 ``images`` in eval mode, normalized batch by batch.

    With several ``replicas`` each runs its own shard of the images and every replica
    gets all the logits back (in order), so all of them return the same result. ``tta``: the
    test-time augmentation level (:mod:`fcnn.tta`).
    """
    shard = images.shape[0] >= replicas.size > 1
    part = (
        distributed.shard_slice(images.shape[0], replicas.rank, replicas.size)
        if shard
        else slice(None)
    )
    logits = predict_logits(net, params, state, images[part], normalization, batch_size, tta=tta)
    if shard:
        logits = np.concatenate(replicas.gather(logits))
    loss, _ = cross_entropy.forward(logits.astype(np.float64), labels)
    return EvalResult(float(loss), logits, labels)

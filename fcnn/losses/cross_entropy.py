"""Softmax cross-entropy on logits, with optional class weights and label smoothing.

For logits ``z`` (N, K), integer labels ``y`` (N,), smoothing ``ε`` and class
weights ``c`` (K,)::

    p   = softmax(z)                          (log-sum-exp, stable for any logits)
    q_i = (1 - ε)·onehot(y_i) + ε/K            (the smoothed target)
    ℓ_i = −Σ_k q_ik · log p_ik
    w_i = c[y_i]                               (1 without class weights)
    L   = Σ_i w_i ℓ_i / Σ_i w_i                (PyTorch's weighted mean)
    ∂L/∂z_i = w_i / Σ_j w_j · (p_i − q_i)      (``p − y`` in the plain case)

With ``weight_total`` the sum is divided by that total instead of this batch's
``Σ_i w_i``: a shard of a larger batch then gives its share of the whole batch's
loss, and the shares (and their gradients) add up to the whole batch's.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fcnn.labels import check_labels

__all__ = ["CrossEntropyCache", "backward", "forward", "log_softmax"]


class CrossEntropyCache(NamedTuple):
    probs: np.ndarray  # (N, K) softmax of the logits
    targets: np.ndarray  # (N, K) smoothed one-hot targets
    sample_weights: np.ndarray  # (N,) w_i / Σ w


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``log(softmax(logits))`` over axis 1, without overflow."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def forward(
    logits: np.ndarray,
    labels: np.ndarray,
    *,
    class_weights: np.ndarray | None = None,
    label_smoothing: float = 0.0,
    weight_total: float | None = None,
) -> tuple[np.ndarray, CrossEntropyCache]:
    """Mean (weighted) cross-entropy as a 0-d array of the logits' dtype, and the cache.

    ``weight_total``: divide by this (the Σ w of the whole batch this one is a shard
    of) instead of this batch's own Σ w; see the module docstring.
    """
    if logits.ndim != 2:
        raise ValueError(f"cross-entropy expects logits of shape (N, K), got {logits.shape}")
    n, k = logits.shape
    labels = check_labels(labels, k)
    if labels.shape[0] != n:
        raise ValueError(f"cross-entropy: {n} rows of logits but {labels.shape[0]} labels")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
    dtype = logits.dtype
    logp = log_softmax(logits)
    targets = np.full((n, k), label_smoothing / k, dtype=dtype)
    targets[np.arange(n), labels] += dtype.type(1.0 - label_smoothing)
    if class_weights is None:
        w = np.ones(n, dtype=dtype)
    else:
        cw = np.asarray(class_weights, dtype=dtype)
        if cw.shape != (k,) or np.any(cw < 0) or not np.all(np.isfinite(cw)):
            raise ValueError(
                f"class_weights must be {k} finite non-negative numbers, got shape {cw.shape}"
            )
        w = cw[labels]
    total = w.sum() if weight_total is None else dtype.type(weight_total)
    if total <= 0:
        raise ValueError("cross-entropy: the class weights of this batch sum to zero")
    sample_weights = w / total
    per_sample = -np.sum(targets * logp, axis=1)
    loss = np.asarray(np.dot(sample_weights, per_sample), dtype=dtype)
    return loss, CrossEntropyCache(np.exp(logp), targets, sample_weights)


def backward(cache: CrossEntropyCache, dloss: float = 1.0) -> np.ndarray:
    """Gradient of ``dloss * L`` w.r.t. the logits, (N, K)."""
    scale = (cache.sample_weights * cache.probs.dtype.type(dloss))[:, None]
    return scale * (cache.probs - cache.targets)

"""What drove a prediction: input gradients (saliency) and penultimate features.

Both run the network with fcnn's own forward and backward passes, in eval mode (no
dropout, BatchNorm running statistics); the features are read at the network's feature tap.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fcnn.layers import Layer, fuse
from fcnn.layers.combinators import feature_split

__all__ = ["features", "input_gradient"]


def input_gradient(
    net: Layer, params: Any, state: Any, x: np.ndarray, class_index: int
) -> np.ndarray:
    """``d logits[:, class_index] / d x`` for normalized input ``x`` (N, C, H, W), summed over N.

    This is the vanilla saliency map (Simonyan et al. 2014): how much each input value
    moves the class score (the logit, before softmax).
    """
    logits, cache, _ = net.apply(params, x, state=state, train=False)
    if not 0 <= class_index < logits.shape[1]:
        raise ValueError(f"class_index must lie in [0, {logits.shape[1]}), got {class_index}")
    dy = np.zeros_like(logits)
    dy[:, class_index] = 1
    dx, _ = net.backward(params, cache, dy)
    assert dx is not None  # need_dx defaults to True
    return dx


def features(net: Layer, params: Any, state: Any, x: np.ndarray) -> np.ndarray:
    """The network's penultimate features of normalized input ``x``: the output of its
    feature tap (:func:`fcnn.layers.combinators.feature_split`)."""
    head, _ = feature_split(net)
    k = len(head.children)
    return fuse(head).apply(params[:k], x, state=state[:k], train=False)[0]

"""What drove a prediction: input gradients (saliency) and penultimate features.

Both walk the network layer by layer with fcnn's own forward and backward passes,
in eval mode (no dropout, BatchNorm running statistics).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fcnn.layers import Layer, from_spec

__all__ = ["features", "input_gradient", "split_layers"]


def split_layers(net: Layer) -> list[Layer]:
    """The top-level layers of a ``serial`` network (a one-layer list otherwise)."""
    if net.spec["type"] != "serial":
        return [net]
    return [from_spec(s) for s in net.spec["layers"]]


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
    return dx


def features(
    net: Layer, params: Any, state: Any, x: np.ndarray, upto: str = "GlobalAvgPool2D"
) -> np.ndarray:
    """The output of the first top-level layer of type ``upto`` (the penultimate features)."""
    layers = split_layers(net)
    for i, layer in enumerate(layers):
        x, _, _ = layer.apply(params[i], x, state=state[i], train=False)
        if layer.name == upto:
            return x
    raise ValueError(f"the network has no {upto} layer")

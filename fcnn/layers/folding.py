"""Folding BatchNorm into the convolution or dense layer before it, for inference.

In eval mode a BatchNorm is an affine map per channel, ``y = x·s + t`` with
``s = γ/√(var + eps)`` and ``t = β − mean·s`` (the running statistics). When it directly
follows a ``Conv2D`` (or a ``Dense``) in a ``serial``, the two compose into one layer of
the same kind: ``w' = w·s`` per output channel, ``b' = b·s + t``. The folded network
computes the same eval-mode outputs (to float rounding) and skips the BatchNorm's passes
over its input. It is for inference only: it has no BatchNorm to train.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from fcnn.layers.base import Layer
from fcnn.layers.catalog import from_spec

__all__ = ["fold_batchnorm"]

# layer type -> the BatchNorm type that can fold into it
_FOLDS_INTO = {"Conv2D": "BatchNorm2D", "Dense": "BatchNorm1D"}


def fold_batchnorm(net: Layer, params: Any, state: Any) -> tuple[Layer, Any, Any]:
    """``(net, params, state)`` with every BatchNorm that directly follows a Conv2D (or a
    BatchNorm1D a Dense) inside a ``serial`` merged into that layer; nested ``serial`` and
    ``residual`` networks are folded too. Returns the inputs unchanged when nothing folds.
    Pure: the given params and state are not modified."""
    spec, params, state = _fold(net.spec, params, state)
    return (from_spec(spec) if spec is not net.spec else net), params, state


def _fold(spec: dict[str, Any], params: Any, state: Any) -> tuple[dict[str, Any], Any, Any]:
    if spec["type"] == "residual":
        parts = [
            (None, None, None) if child is None else _fold(child, params[i], _child(state, i))
            for i, child in enumerate((spec["block"], spec["shortcut"]))
        ]
        if parts[0][0] is spec["block"] and parts[1][0] is spec["shortcut"]:
            return spec, params, state
        (block, p_block, s_block), (shortcut, p_short, s_short) = parts
        folded = {**spec, "block": block, "shortcut": shortcut}
        return folded, (p_block, p_short), (s_block, s_short)
    if spec["type"] != "serial":
        return spec, params, state
    layers: list[tuple[dict[str, Any], Any, Any]] = []
    changed = False
    for i, child in enumerate(spec["layers"]):
        folded = _fold(child, params[i], _child(state, i))
        changed |= folded[0] is not child
        if layers and _FOLDS_INTO.get(layers[-1][0]["type"]) == child["type"]:
            prev_spec, prev_params, prev_state = layers[-1]
            layers[-1] = (prev_spec, _merge(prev_params, params[i], _child(state, i)), prev_state)
            changed = True
        else:
            layers.append(folded)
    if not changed:
        return spec, params, state
    specs, ps, ss = zip(*layers, strict=True)
    return {**spec, "layers": list(specs)}, tuple(ps), tuple(ss)


def _child(state: Any, i: int) -> Any:
    """The i-th child's state of a combinator (None when the whole state is None)."""
    return None if state is None else state[i]


def _merge(layer_params: Any, bn_params: Any, bn_state: Any) -> Any:
    """Conv2D or Dense params followed by an eval-mode BatchNorm, as one layer's params."""
    w, b = layer_params.w, layer_params.b
    scale = bn_params.gamma / np.sqrt(bn_state.var + bn_params.eps)  # (C_out,)
    shift = bn_params.beta - bn_state.mean * scale
    per_out = (-1,) + (1,) * (w.ndim - 1)  # w is (C_out, C_in, KH, KW) or (out, in)
    return attrs.evolve(
        layer_params,
        w=(w * scale.reshape(per_out)).astype(w.dtype),
        b=(b * scale + shift).astype(b.dtype),
    )

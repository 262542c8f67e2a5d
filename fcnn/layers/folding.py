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

from fcnn.layers import network, registry
from fcnn.layers.base import Layer
from fcnn.layers.batchnorm import gamma_of
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
    kind = registry.combinator_of(spec["type"])
    if kind is None:
        return spec, params, state
    parts = [
        (None, None, None)
        if c is None
        else _fold(c, network.child(params, i), network.child(state, i))
        for i, c in enumerate(kind.children(spec))
    ]
    folded_spec = spec
    if kind.fold is not None:
        folded_spec, parts = kind.fold(spec, parts, _merged)
    specs = [part[0] for part in parts]
    if folded_spec is spec and specs == list(kind.children(spec)):
        return spec, params, state  # nothing folded: the same objects back
    return (
        kind.with_children(folded_spec, specs),
        tuple(part[1] for part in parts),
        tuple(part[2] for part in parts),
    )


def _merged(
    first: tuple[dict[str, Any], Any, Any], second: tuple[dict[str, Any], Any, Any]
) -> tuple[dict[str, Any], Any, Any] | None:
    """The one layer that ``first`` followed by ``second`` (spec, params, state each) folds
    into, or None: a Conv2D (Dense) followed by a BatchNorm2D (BatchNorm1D)."""
    if (
        first[0] is None
        or second[0] is None
        or _FOLDS_INTO.get(first[0]["type"]) != second[0]["type"]
    ):
        return None
    return first[0], _merge(first[1], second[1], second[2]), first[2]


def _merge(layer_params: Any, bn_params: Any, bn_state: Any) -> Any:
    """Conv2D or Dense params followed by an eval-mode BatchNorm, as one layer's params."""
    w, b = layer_params.w, layer_params.b
    scale = gamma_of(bn_params) / np.sqrt(bn_state.var + bn_params.eps)  # (C_out,)
    shift = bn_params.beta - bn_state.mean * scale
    per_out = (-1,) + (1,) * (w.ndim - 1)  # w is (C_out, C_in, KH, KW) or (out, in)
    return attrs.evolve(
        layer_params,
        w=(w * scale.reshape(per_out)).astype(w.dtype),
        b=(b * scale + shift).astype(b.dtype),
    )

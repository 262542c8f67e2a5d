"""What a network holds and computes per example, layer by layer: output shapes, parameter
counts and multiply-adds of its convolutions and dense layers, from its spec and input shape.

:func:`layer_costs` is the table ``fcnn summary`` prints (:mod:`fcnn.model_summary`);
inference sums it to decide how finely a batch is worth splitting over threads
(:mod:`fcnn.predict`): a shard must carry enough arithmetic to repay the threads' overhead.
Element-wise layers (activations, pooling, BatchNorm, dropout) count as zero multiply-adds;
so does a registered layer type this module does not know, in which case the total is a
lower bound.
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

import attrs
import numpy as np

from fcnn import random as fr
from fcnn import tree
from fcnn.layers import network
from fcnn.layers.catalog import from_spec

__all__ = ["LayerCost", "layer_costs", "multiply_adds"]


@attrs.frozen
class LayerCost:
    """One layer of a network (combinators are not rows: their children are)."""

    path: str  # the tree path of its params ("3", "4.0.1" inside combinators; "" for a lone layer)
    type: str
    output_shape: tuple[int, ...]  # one example's, without the batch axis
    params: int  # trainable values
    state: int  # non-trainable values (BatchNorm running statistics)
    multiply_adds: int


def layer_costs(spec: dict[str, Any], input_shape: tuple[int, ...]) -> tuple[LayerCost, ...]:
    """The rows of the network of ``spec`` (``layer.spec``) on one example of ``input_shape``
    (without the batch axis), in order: ``prod(output) * C_in * KH * KW`` multiply-adds per
    convolution, ``in * out`` per dense layer. Cached per spec and shape: finding the shapes
    builds each layer once."""
    return _cached(json.dumps(spec, sort_keys=True), tuple(int(d) for d in input_shape))


def multiply_adds(spec: dict[str, Any], input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one example through the network of ``spec``: :func:`layer_costs`'s sum."""
    return sum(row.multiply_adds for row in layer_costs(spec, input_shape))


@functools.lru_cache(maxsize=64)
def _cached(spec_json: str, input_shape: tuple[int, ...]) -> tuple[LayerCost, ...]:
    rows: list[LayerCost] = []
    # two branches that meet have the same shape (the combinator's init checks it)
    network.walk(json.loads(spec_json), input_shape, _row(rows), lambda a, b: a)
    return tuple(rows)


def _row(rows: list[LayerCost]) -> network.Leaf:
    """The walker's leaf: appends the layer's row on one example of ``shape`` and returns its
    output shape."""

    def leaf(spec: dict[str, Any], path: network.Path, _p: Any, _s: Any, shape: Any) -> Any:
        out_shape, params, state = from_spec(spec).init(fr.key(0), shape)
        out_shape = tuple(out_shape)
        macs = _leaf_multiply_adds(spec, shape, out_shape)
        label = ".".join(map(str, path))
        rows.append(LayerCost(label, spec["type"], out_shape, _size(params), _size(state), macs))
        return out_shape

    return leaf


def _size(t: Any) -> int:
    return int(sum(np.size(leaf) for leaf in tree.leaves(t)))


def _leaf_multiply_adds(
    spec: dict[str, Any], shape: tuple[int, ...], out_shape: tuple[int, ...]
) -> int:
    if spec["type"] == "Conv2D":
        k = spec["kernel_size"]
        kh, kw = (k, k) if isinstance(k, int) else k
        return math.prod(out_shape) * shape[0] * kh * kw
    if spec["type"] == "Dense":
        return math.prod(shape) * math.prod(out_shape)
    return 0

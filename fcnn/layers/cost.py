"""The arithmetic a network does per example: multiply-adds of its convolutions and dense
layers, from its spec and input shape.

Inference uses it to decide how finely a batch is worth splitting over threads
(:mod:`fcnn.predict`): a shard must carry enough arithmetic to repay the threads' overhead.
Element-wise layers (activations, pooling, BatchNorm, dropout) count as zero; so does a
registered layer type this module does not know, in which case the total is a lower bound.
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

from fcnn import random as fr
from fcnn.layers.catalog import from_spec

__all__ = ["multiply_adds"]


def multiply_adds(spec: dict[str, Any], input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one example of ``input_shape`` (without the batch axis) through the
    network of ``spec`` (``layer.spec``): ``prod(output) * C_in * KH * KW`` per convolution,
    ``in * out`` per dense layer. Cached per spec and shape: finding the shapes builds
    each layer once."""
    return _cached(json.dumps(spec, sort_keys=True), tuple(int(d) for d in input_shape))


@functools.lru_cache(maxsize=64)
def _cached(spec_json: str, input_shape: tuple[int, ...]) -> int:
    return _walk(json.loads(spec_json), input_shape)[0]


def _walk(spec: dict[str, Any], shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """(multiply-adds, output shape) of the layer of ``spec`` on one example of ``shape``."""
    kind = spec["type"]
    if kind == "serial":
        total = 0
        for child in spec["layers"]:
            done, shape = _walk(child, shape)
            total += done
        return total, shape
    if kind == "residual":
        done, out = _walk(spec["block"], shape)
        if spec.get("shortcut") is not None:
            done += _walk(spec["shortcut"], shape)[0]
        return done, out
    out_shape = tuple(from_spec(spec).init(fr.key(0), shape)[0])
    if kind == "Conv2D":
        k = spec["kernel_size"]
        kh, kw = (k, k) if isinstance(k, int) else k
        return math.prod(out_shape) * shape[0] * kh * kw, out_shape
    if kind == "Dense":
        return math.prod(shape) * math.prod(out_shape), out_shape
    return 0, out_shape

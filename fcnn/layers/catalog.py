"""The composable layers by name, and :func:`from_spec`, which rebuilds any layer or network
from its JSON-able spec.

Each constructor (``Conv2D(16, 5)``, ``ReLU()``, ...) is defined beside its math in its
layer module and registered there under its type name (:func:`fcnn.layers.base.composable`);
this module gathers them for ``fcnn.layers`` and resolves specs through the registry.
"""

from __future__ import annotations

from typing import Any

from fcnn.layers import (
    combinators,  # noqa: F401 - registers serial and residual
    registry,
)
from fcnn.layers.activations import GELU, LeakyReLU, Multiply, ReLU, Sigmoid, Softmax, Tanh
from fcnn.layers.base import Layer
from fcnn.layers.batchnorm import BatchNorm1D, BatchNorm2D
from fcnn.layers.conv import Conv2D
from fcnn.layers.dense import Dense
from fcnn.layers.dropout import Dropout
from fcnn.layers.flatten import Flatten
from fcnn.layers.pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D

__all__ = [
    "GELU",
    "AvgPool2D",
    "BatchNorm1D",
    "BatchNorm2D",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2D",
    "LeakyReLU",
    "MaxPool2D",
    "Multiply",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "from_spec",
]


def _tupled(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def from_spec(spec: dict[str, Any]) -> Layer:
    """Rebuild a layer or network from ``layer.spec`` (as stored in checkpoints and exports);
    every type must be registered (:mod:`fcnn.layers.registry`)."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"a layer spec is a dict with a 'type' key, got {spec!r}")
    kind = spec["type"]
    if not isinstance(kind, str):
        raise ValueError(f"a layer spec's 'type' is a name, got {kind!r}")
    combinator = registry.combinator_of(kind)
    if combinator is not None:
        children = [None if c is None else from_spec(c) for c in combinator.children(spec)]
        return combinator.build(spec, children)
    ctor = registry.constructor(kind)  # ValueError for a type nobody registered
    hyper = {k: _tupled(v) for k, v in spec.items() if k != "type"}
    try:
        return ctor(**hyper)
    except TypeError as exc:
        raise ValueError(f"bad hyperparameters for {kind}: {hyper} ({exc})") from None

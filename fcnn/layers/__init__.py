"""Layers: pure forward/backward pairs over frozen ``attrs`` parameter trees.

The contract (a layer module's ``init`` / ``forward`` / ``backward``, and the composable
:class:`~fcnn.layers.base.Layer` that combinators thread through a network) is stated once,
in :mod:`fcnn.layers.base`. Each module (``conv``, ``dense``, ``pooling``, ``batchnorm``,
``dropout``, ``flatten``, ``activations``) defines its composable constructors beside its
math; they are gathered here, with :func:`serial`, :func:`residual`, :func:`from_spec`, the
fusion pass :func:`fuse` and the :func:`register` decorator for a user's own layers.
"""

from fcnn.layers.base import Layer
from fcnn.layers.catalog import (
    GELU,
    AvgPool2D,
    BatchNorm1D,
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    LeakyReLU,
    MaxPool2D,
    Multiply,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    from_spec,
)
from fcnn.layers.combinators import residual, serial
from fcnn.layers.fusion import fuse
from fcnn.layers.registry import register

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
    "Layer",
    "LeakyReLU",
    "MaxPool2D",
    "Multiply",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "from_spec",
    "fuse",
    "register",
    "residual",
    "serial",
]

"""Layers: pure forward/backward pairs over frozen ``attrs`` parameter trees.

The contract
------------
Each layer module (``conv``, ``dense``, ``pooling``, ``batchnorm``, ``dropout``,
``flatten``, ``activations``) exposes its params class, ``init``, ``forward`` and
``backward``, with this one signature::

    init(key, input_shape, **hyper)           -> (output_shape, params[, state])
    forward(params, x[, *, state, train, key]) -> (y, cache[, new_state])
    backward(params, cache, dy[, *, need_dx])  -> (dx, grads)

- ``params`` is a frozen attrs instance; hyperparameters (stride, padding,
  momentum, drop rate...) are *static* fields, never leaves. ``grads`` is an
  instance of the same class with the gradient in each leaf, so optimizers map
  params and grads together.
- The bracketed parts appear only where a layer needs them, always keyword-only:
  ``train`` selects training or eval mode (BatchNorm, Dropout), ``key`` is an
  explicit random key (Dropout), ``state`` is non-trainable state (BatchNorm's
  running statistics), and a layer that takes ``state`` returns the new state
  as a third value instead of mutating anything.
- ``cache`` is a NamedTuple holding exactly what backward needs.
- ``need_dx=False`` (conv, dense) skips the input gradient and returns None for it: the
  first layer of a network never needs it.
- Nothing mutates its inputs; every op preserves the input's floating dtype.

For composition, :mod:`fcnn.layers.catalog` wraps each module as a
:class:`~fcnn.layers.base.Layer` with the uniform signature
``apply(params, x, *, state, train, key) -> (y, cache, new_state)``, which
:func:`serial` and :func:`residual` thread through a network.
"""

from fcnn.layers.base import Layer
from fcnn.layers.catalog import (
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
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    from_spec,
)
from fcnn.layers.combinators import residual, serial
from fcnn.layers.registry import register

__all__ = [
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
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "from_spec",
    "register",
    "residual",
    "serial",
]

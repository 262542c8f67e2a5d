"""Element-wise activations and softmax. The params class names the activation:
``forward(ReLUParams(), x)``, ``forward(LeakyReLUParams(negative_slope=0.1), x)``.

Derivatives at kinks: ReLU and LeakyReLU use the slope of the negative side at
exactly 0. Softmax normalizes over axis 1 (the class or channel axis). GELU is the tanh
approximation (Hendrycks & Gimpel 2016), PyTorch's ``GELU(approximate="tanh")``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import attrs
import numpy as np

from fcnn import random as fr
from fcnn.layers.base import composable_module
from fcnn.tree import static_field

__all__ = [
    "GELU",
    "ActivationCache",
    "GELUParams",
    "LeakyReLU",
    "LeakyReLUParams",
    "Multiply",
    "MultiplyParams",
    "ReLU",
    "ReLUParams",
    "Sigmoid",
    "SigmoidParams",
    "Softmax",
    "SoftmaxParams",
    "Tanh",
    "TanhParams",
    "backward",
    "forward",
    "init",
]


@attrs.frozen(eq=False)
class ReLUParams:
    """``max(x, 0)``."""


@attrs.frozen(eq=False)
class LeakyReLUParams:
    """``x`` where positive, ``negative_slope * x`` elsewhere."""

    negative_slope: float = static_field(default=0.01)


@attrs.frozen(eq=False)
class SigmoidParams:
    """``1 / (1 + exp(-x))``, computed without overflow."""


@attrs.frozen(eq=False)
class TanhParams:
    """``tanh(x)``."""


@attrs.frozen(eq=False)
class MultiplyParams:
    """``factor · x``: a fixed scale, such as the 1/9 airbench puts on its logits."""

    factor: float = static_field(default=1.0, converter=float)


@attrs.frozen(eq=False)
class GELUParams:
    """``x · Φ(x)`` by the tanh approximation: ``0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))``,
    within 5e-4 of the exact GELU everywhere; smooth, so its derivative has no kink."""


@attrs.frozen(eq=False)
class SoftmaxParams:
    """``exp(x) / sum(exp(x))`` over axis 1, shifted by the max for stability."""


ActivationParams = (
    ReLUParams | LeakyReLUParams | SigmoidParams | TanhParams | GELUParams | SoftmaxParams
    | MultiplyParams
)


class ActivationCache(NamedTuple):
    saved: np.ndarray  # the input (ReLU, LeakyReLU, GELU) or the output (the others)


def init(
    key: fr.Key,
    input_shape: tuple[int, ...],
    *,
    kind: type[ActivationParams] = ReLUParams,
    **static: float,
) -> tuple[tuple[int, ...], ActivationParams]:
    """``kind`` is the params class (``ReLUParams``, ``LeakyReLUParams``, ...); ``static`` its
    fields (``negative_slope``)."""
    if kind not in _FORWARD:
        names = sorted(cls.__name__ for cls in _FORWARD)
        raise ValueError(f"unknown activation {kind!r}; choose one of {names}")
    return tuple(input_shape), kind(**static)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` in x's dtype, without overflow for any x."""
    e = np.exp(-np.abs(x))  # never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` over ``axis``, shifted by the max so that it never overflows."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _relu(params: ReLUParams, x: np.ndarray) -> tuple[np.ndarray, ActivationCache]:
    return np.maximum(x, 0), ActivationCache(x)


def _relu_vjp(params: ReLUParams, s: np.ndarray, dy: np.ndarray) -> np.ndarray:
    # the mask written as 0/1 in dy's dtype, then scaled in place rather than dy * (s > 0),
    # which multiplies through a bool-to-float cast
    dx = np.greater(s, 0, out=np.empty(dy.shape, dy.dtype))
    dx *= dy
    return dx


def _leaky(params: LeakyReLUParams, x: np.ndarray) -> tuple[np.ndarray, ActivationCache]:
    return np.where(x > 0, x, x * x.dtype.type(params.negative_slope)), ActivationCache(x)


def _leaky_vjp(params: LeakyReLUParams, s: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return dy * np.where(s > 0, 1, s.dtype.type(params.negative_slope)).astype(dy.dtype)


def _sigmoid(params: SigmoidParams, x: np.ndarray) -> tuple[np.ndarray, ActivationCache]:
    y = sigmoid(x)
    return y, ActivationCache(y)


def _tanh(params: TanhParams, x: np.ndarray) -> tuple[np.ndarray, ActivationCache]:
    y = np.tanh(x)
    return y, ActivationCache(y)


_GELU_C = float(np.sqrt(2.0 / np.pi))
_GELU_A = 0.044715


def _gelu_half_one_plus_tanh(x: np.ndarray) -> np.ndarray:
    """``0.5 (1 + tanh(c (x + a x³)))`` in x's dtype, written in place into one new array."""
    dt = x.dtype.type
    t = x * x
    t *= dt(_GELU_C * _GELU_A)
    t += dt(_GELU_C)
    t *= x  # c (x + a x³)
    np.tanh(t, out=t)
    t += dt(1.0)
    t *= dt(0.5)
    return t


def _gelu(params: GELUParams, x: np.ndarray) -> tuple[np.ndarray, ActivationCache]:
    y = _gelu_half_one_plus_tanh(x)
    y *= x
    return y, ActivationCache(x)


def _gelu_vjp(params: GELUParams, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    # with h = 0.5 (1 + tanh(u)), u = c (x + a x³):  d/dx [x h] = h + x · 2h(1 − h) · du/dx,
    # since d tanh = 1 − tanh² = 4h(1 − h); du/dx = c (1 + 3a x²). The tanh is recomputed
    # rather than cached: one element-wise pass against a second map-sized cache per layer
    dt = x.dtype.type
    h = _gelu_half_one_plus_tanh(x)
    slope = x * x
    slope *= dt(3.0 * _GELU_A * _GELU_C)
    slope += dt(_GELU_C)
    slope *= x  # x du/dx
    slope *= h
    slope *= dt(1.0) - h  # x du/dx h (1 − h)
    slope *= dt(2.0)
    slope += h
    slope *= dy
    return slope


def _softmax(params: SoftmaxParams, x: np.ndarray) -> tuple[np.ndarray, ActivationCache]:
    if x.ndim < 2:
        raise ValueError(f"Softmax normalizes over axis 1; got input of shape {x.shape}")
    y = softmax(x)
    return y, ActivationCache(y)


# the params class selects the activation: (forward, vector-Jacobian product of the saved
# value and dy)
_FORWARD: dict[type, Callable[..., tuple[np.ndarray, ActivationCache]]] = {
    ReLUParams: _relu,
    LeakyReLUParams: _leaky,
    SigmoidParams: _sigmoid,
    TanhParams: _tanh,
    GELUParams: _gelu,
    MultiplyParams: lambda params, x: (x * x.dtype.type(params.factor), ActivationCache(x)),
    SoftmaxParams: _softmax,
}
_VJP: dict[type, Callable[..., np.ndarray]] = {
    ReLUParams: _relu_vjp,
    LeakyReLUParams: _leaky_vjp,
    SigmoidParams: lambda params, s, dy: dy * s * (1 - s),
    TanhParams: lambda params, s, dy: dy * (1 - s * s),
    GELUParams: _gelu_vjp,
    MultiplyParams: lambda params, s, dy: dy * dy.dtype.type(params.factor),
    SoftmaxParams: lambda params, s, dy: s * (dy - np.sum(dy * s, axis=1, keepdims=True)),
}


def _lookup(table: dict[type, Callable[..., Any]], params: object) -> Callable[..., Any]:
    fn = table.get(type(params))
    if fn is None:
        raise TypeError(f"not an activation's params: {type(params).__name__}")
    return fn


def forward(params: ActivationParams, x: np.ndarray) -> tuple[np.ndarray, ActivationCache]:
    """y = activation(x), same shape and dtype."""
    return _lookup(_FORWARD, params)(params, x)


def backward(
    params: ActivationParams, cache: ActivationCache, dy: np.ndarray
) -> tuple[np.ndarray, ActivationParams]:
    """Vector-Jacobian product; the (leafless) params are their own gradient."""
    return _lookup(_VJP, params)(params, cache.saved, dy), params


_MODULE = sys.modules[__name__]
ReLU = composable_module(
    "ReLU", _MODULE, kind=ReLUParams, doc="max(x, 0), elementwise, as a composable layer."
)
LeakyReLU = composable_module(
    "LeakyReLU",
    _MODULE,
    kind=LeakyReLUParams,
    doc="x, or negative_slope * x below 0, as a composable layer.",
)
Sigmoid = composable_module(
    "Sigmoid", _MODULE, kind=SigmoidParams, doc="1 / (1 + exp(-x)) as a composable layer."
)
Tanh = composable_module("Tanh", _MODULE, kind=TanhParams, doc="tanh(x) as a composable layer.")
GELU = composable_module(
    "GELU",
    _MODULE,
    kind=GELUParams,
    doc="x · Φ(x) by the tanh approximation (PyTorch's GELU(approximate='tanh')), composable.",
)
Multiply = composable_module(
    "Multiply",
    _MODULE,
    kind=MultiplyParams,
    doc="factor · x, a fixed scale, as a composable layer.",
)
Softmax = composable_module(
    "Softmax", _MODULE, kind=SoftmaxParams, doc="Softmax over axis 1 as a composable layer."
)

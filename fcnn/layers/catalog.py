"""Constructors of composable layers (``Conv2D(16, 5)``, ``ReLU()``, ...) and
:func:`from_spec`, which rebuilds any layer or network from its JSON-able spec."""

from __future__ import annotations

from functools import partial
from typing import Any

from fcnn.layers import activations, batchnorm, conv, dense, dropout, flatten, pooling, registry
from fcnn.layers.base import Layer, module_backward, stateless
from fcnn.layers.combinators import residual, serial

__all__ = [
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
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "from_spec",
]


def _spec(type_name: str, **hyper: Any) -> dict[str, Any]:
    def jsonable(v: Any) -> Any:
        return list(v) if isinstance(v, tuple) else v

    return {"type": type_name, **{k: jsonable(v) for k, v in hyper.items()}}


def Conv2D(  # noqa: N802 - layer constructors are named like classes, as in stax
    out_channels: int,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | str | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    w_init: str = "he_normal",
) -> Layer:
    """2-D convolution; see :mod:`fcnn.layers.conv`."""
    init = partial(
        conv.init,
        out_channels=out_channels,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        w_init=w_init,
    )
    spec = _spec(
        "Conv2D",
        out_channels=out_channels,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        w_init=w_init,
    )
    return stateless(spec, init, conv)


def Dense(out_features: int, w_init: str = "he_normal") -> Layer:  # noqa: N802
    """Fully connected layer; see :mod:`fcnn.layers.dense`."""
    init = partial(dense.init, out_features=out_features, w_init=w_init)
    return stateless(_spec("Dense", out_features=out_features, w_init=w_init), init, dense)


def _pool(type_name: str, kind: str, window, stride, padding) -> Layer:
    init = partial(pooling.init, kind=kind, window=window, stride=stride, padding=padding)
    return stateless(_spec(type_name, window=window, stride=stride, padding=padding), init, pooling)


def MaxPool2D(window=2, stride=None, padding=0) -> Layer:  # noqa: N802
    """Max pooling (gradient to the first maximum); stride defaults to the window."""
    return _pool("MaxPool2D", "max", window, stride, padding)


def AvgPool2D(window=2, stride=None, padding=0) -> Layer:  # noqa: N802
    """Average pooling; stride defaults to the window."""
    return _pool("AvgPool2D", "avg", window, stride, padding)


def GlobalAvgPool2D() -> Layer:  # noqa: N802
    """Mean over H and W: (N, C, H, W) -> (N, C)."""
    return stateless(_spec("GlobalAvgPool2D"), partial(pooling.init, kind="global_avg"), pooling)


def _batchnorm(type_name: str, ndim: int, momentum: float, eps: float) -> Layer:
    def init(key, input_shape):
        if len(input_shape) != ndim:
            want = "(C,)" if ndim == 1 else "(C, H, W)"
            raise ValueError(f"{type_name} expects an input shape {want}, got {tuple(input_shape)}")
        return batchnorm.init(key, tuple(input_shape), momentum=momentum, eps=eps)

    def apply(params, x, *, state=None, train=False, key=None):
        if state is None:
            raise ValueError(f"{type_name} needs its state (running statistics) from init")
        return batchnorm.forward(params, x, state=state, train=train)

    spec = _spec(type_name, momentum=momentum, eps=eps)
    return Layer(spec=spec, init=init, apply=apply, backward=module_backward(batchnorm.backward))


def BatchNorm2D(momentum: float = 0.1, eps: float = 1e-5) -> Layer:  # noqa: N802
    """Batch normalization of (N, C, H, W) per channel; see :mod:`fcnn.layers.batchnorm`."""
    return _batchnorm("BatchNorm2D", 3, momentum, eps)


def BatchNorm1D(momentum: float = 0.1, eps: float = 1e-5) -> Layer:  # noqa: N802
    """Batch normalization of (N, C) per feature."""
    return _batchnorm("BatchNorm1D", 1, momentum, eps)


def Dropout(drop_rate: float = 0.5) -> Layer:  # noqa: N802
    """Inverted dropout; needs a key in training, the identity in eval."""

    def init(key, input_shape):
        out_shape, params = dropout.init(key, tuple(input_shape), drop_rate)
        return out_shape, params, None

    def apply(params, x, *, state=None, train=False, key=None):
        y, cache = dropout.forward(params, x, key=key, train=train)
        return y, cache, state

    return Layer(
        spec=_spec("Dropout", drop_rate=drop_rate),
        init=init,
        apply=apply,
        backward=module_backward(dropout.backward),
    )


def Flatten() -> Layer:  # noqa: N802
    """(N, ...) -> (N, features)."""
    return stateless(_spec("Flatten"), flatten.init, flatten)


def _activation(type_name: str, kind: str, **hyper: float) -> Layer:
    return stateless(
        _spec(type_name, **hyper), partial(activations.init, kind=kind, **hyper), activations
    )


def ReLU() -> Layer:  # noqa: N802
    return _activation("ReLU", "relu")


def LeakyReLU(negative_slope: float = 0.01) -> Layer:  # noqa: N802
    return _activation("LeakyReLU", "leaky_relu", negative_slope=negative_slope)


def Sigmoid() -> Layer:  # noqa: N802
    return _activation("Sigmoid", "sigmoid")


def Tanh() -> Layer:  # noqa: N802
    return _activation("Tanh", "tanh")


def Softmax() -> Layer:  # noqa: N802
    return _activation("Softmax", "softmax")


for _name, _ctor in {
    "Conv2D": Conv2D,
    "Dense": Dense,
    "MaxPool2D": MaxPool2D,
    "AvgPool2D": AvgPool2D,
    "GlobalAvgPool2D": GlobalAvgPool2D,
    "BatchNorm2D": BatchNorm2D,
    "BatchNorm1D": BatchNorm1D,
    "Dropout": Dropout,
    "Flatten": Flatten,
    "ReLU": ReLU,
    "LeakyReLU": LeakyReLU,
    "Sigmoid": Sigmoid,
    "Tanh": Tanh,
    "Softmax": Softmax,
}.items():
    registry.builtin(_name, _ctor)


def _tupled(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def from_spec(spec: dict[str, Any]) -> Layer:
    """Rebuild a layer or network from ``layer.spec`` (as stored in checkpoints and exports);
    every type must be registered (:mod:`fcnn.layers.registry`)."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"a layer spec is a dict with a 'type' key, got {spec!r}")
    kind = spec["type"]
    if kind == "serial":
        return serial(*(from_spec(s) for s in spec["layers"]))
    if kind == "residual":
        shortcut = spec.get("shortcut")
        return residual(from_spec(spec["block"]), None if shortcut is None else from_spec(shortcut))
    ctor = registry.constructor(kind)  # ValueError for a type nobody registered
    hyper = {k: _tupled(v) for k, v in spec.items() if k != "type"}
    try:
        return ctor(**hyper)
    except TypeError as exc:
        raise ValueError(f"bad hyperparameters for {kind}: {hyper} ({exc})") from None

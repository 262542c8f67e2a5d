"""Combinators that build networks out of layers: :func:`serial` and :func:`residual`.

Both return an ordinary :class:`~fcnn.layers.base.Layer`, so they nest. Params, state and
caches of a combinator are tuples of its children's, in order. Each is registered here with
what the rest of the package needs of it (:class:`~fcnn.layers.registry.Combinator`: its
children, how to rebuild it, how values flow through it, how BatchNorm folds inside it), so
a new combinator touches this module only. They compose and nothing else: running a network
faster is the explicit pass of :mod:`fcnn.layers.fusion`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fcnn import random as fr
from fcnn.layers import registry
from fcnn.layers.base import Layer

__all__ = ["feature_split", "residual", "serial", "split"]

Spec = dict[str, Any]


def _child_keys(key: fr.Key | None, n: int) -> list[fr.Key | None]:
    return [None] * n if key is None else list(fr.split(key, n))


def serial(*layers: Layer, features: int | None = None) -> Layer:
    """Layers applied one after the other; backward runs them in reverse. Params, state and
    caches are tuples in the order of ``layers``.

    ``features`` is the network's feature tap: the index of the layer whose output is its
    penultimate features (out-of-distribution checks, ``Model.features``); by default, the
    input of its last layer."""
    if not layers:
        raise ValueError("serial needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"serial: argument {i} is not a Layer: {layer!r}")
    n = len(layers)
    if features is not None and not (isinstance(features, int) and 0 <= features < n - 1):
        raise ValueError(
            f"serial: features names the layer whose output is the features, an index in "
            f"[0, {n - 1}) (a layer before the last), got {features!r}"
        )

    def init(key, input_shape):
        shape, params, states = tuple(input_shape), [], []
        for layer, k in zip(layers, fr.split(key, n), strict=True):
            shape, p, s = layer.init(k, shape)
            params.append(p)
            states.append(s)
        return shape, tuple(params), tuple(states)

    def apply(params, x, *, state=None, train=False, key=None):
        states = (None,) * n if state is None else state
        caches, new_states = [], []
        for layer, p, s, k in zip(layers, params, states, _child_keys(key, n), strict=True):
            x, cache, s = layer.apply(p, x, state=s, train=train, key=k)
            caches.append(cache)
            new_states.append(s)
        return x, tuple(caches), tuple(new_states)

    def backward(params, cache, dy, *, need_dx=True):
        grads: list[Any] = [None] * n
        grad: Any = dy  # None only out of the first layer, when the caller needs no dx
        for i in reversed(range(n)):
            # the first layer's input gradient only when the caller needs it
            grad, grads[i] = layers[i].backward(params[i], cache[i], grad, need_dx=need_dx or i > 0)
        return grad, tuple(grads)

    spec: Spec = {"type": "serial", "layers": [layer.spec for layer in layers]}
    if features is not None:
        spec["features"] = features
    return Layer(spec=spec, init=init, apply=apply, backward=backward, children=layers)


def split(net: Layer, count: int) -> tuple[Layer, Layer]:
    """A ``serial`` network cut after its first ``count`` layers, as two serial networks
    (their params and state are ``params[:count]`` and ``params[count:]``)."""
    if net.name != "serial" or not 0 < count < len(net.children):
        raise ValueError(
            f"only a serial network of more than {count} layers splits after layer {count}; "
            f"got {net!r}"
        )
    layers = [layer for layer in net.children if layer is not None]  # a serial's are all set
    return serial(*layers[:count]), serial(*layers[count:])


def feature_split(net: Layer) -> tuple[Layer, Layer]:
    """A ``serial`` network cut at its feature tap (``serial(..., features=k)``, by default
    before its last layer): the layers that compute the features and the rest, as
    :func:`split` gives them (the first part's params are ``params[:len(first.children)]``)."""
    if net.name != "serial":
        raise ValueError(
            f"only a serial network has a feature tap (serial(..., features=k)); got {net!r}"
        )
    tap = net.spec.get("features")
    return split(net, len(net.children) - 1 if tap is None else tap + 1)


def residual(block: Layer, shortcut: Layer | None = None) -> Layer:
    """``y = block(x) + shortcut(x)``, with the identity as the default shortcut.

    Use a projection shortcut (for example a 1x1 strided ``Conv2D``) when the block
    changes the shape.
    """

    def init(key, input_shape):
        k_block, k_short = fr.split(key, 2)
        out_shape, p_block, s_block = block.init(k_block, input_shape)
        if shortcut is None:
            short_shape, p_short, s_short = tuple(input_shape), None, None
        else:
            short_shape, p_short, s_short = shortcut.init(k_short, input_shape)
        if tuple(short_shape) != tuple(out_shape):
            raise ValueError(
                f"residual: the block's output shape {tuple(out_shape)} differs from the "
                f"shortcut's {tuple(short_shape)}; add a projection shortcut"
            )
        return out_shape, (p_block, p_short), (s_block, s_short)

    def apply(params, x, *, state=None, train=False, key=None):
        s_block, s_short = (None, None) if state is None else state
        k_block, k_short = _child_keys(key, 2)
        y, c_block, s_block = block.apply(params[0], x, state=s_block, train=train, key=k_block)
        if shortcut is None:
            return y + x, (c_block, None), (s_block, s_short)
        z, c_short, s_short = shortcut.apply(params[1], x, state=s_short, train=train, key=k_short)
        return y + z, (c_block, c_short), (s_block, s_short)

    def backward(params, cache, dy, *, need_dx=True):
        dx, g_block = block.backward(params[0], cache[0], dy, need_dx=need_dx)
        if shortcut is None:
            return (dx + dy if need_dx and dx is not None else None), (g_block, None)
        dx_short, g_short = shortcut.backward(params[1], cache[1], dy, need_dx=need_dx)
        if not need_dx or dx is None or dx_short is None:
            return None, (g_block, g_short)
        return dx + dx_short, (g_block, g_short)

    spec = {"type": "residual", "block": block.spec, "shortcut": shortcut and shortcut.spec}
    return Layer(spec=spec, init=init, apply=apply, backward=backward, children=(block, shortcut))


# ------------------------------------------------------------------ serial's registration


def _serial_children(spec: Spec) -> list[Spec]:
    layers = spec.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ValueError("a serial spec needs 'layers': a non-empty list of layer specs")
    return layers


def _serial_flow(spec: Spec, run_child: Callable[..., Any], x: Any, add: Any) -> Any:
    for i, child in enumerate(spec["layers"]):
        x = run_child(i, child, x)
    return x


def _serial_fold(
    spec: Spec, parts: list[tuple[Any, Any, Any]], merge: Callable[..., Any]
) -> tuple[Spec, list[tuple[Any, Any, Any]]]:
    """Each child merged into the one before it where ``merge`` allows (a BatchNorm into
    the convolution it follows); the feature tap moves with the layers."""
    folded: list[tuple[Any, Any, Any]] = []
    position: list[int] = []  # each child's index in the folded serial
    for part in parts:
        merged = merge(folded[-1], part) if folded else None
        if merged is None:
            folded.append(part)
        else:
            folded[-1] = merged
        position.append(len(folded) - 1)
    tap = spec.get("features")
    if tap is not None and position[tap] != tap:
        spec = {**spec, "features": position[tap]}
    return spec, folded


registry.combinator(
    "serial",
    registry.Combinator(
        children=_serial_children,
        build=lambda spec, layers: serial(*layers, features=spec.get("features")),
        with_children=lambda spec, layers: {**spec, "layers": list(layers)},
        flow=_serial_flow,
        fold=_serial_fold,
    ),
)


# ---------------------------------------------------------------- residual's registration


def _residual_children(spec: Spec) -> tuple[Spec, Spec | None]:
    if "block" not in spec:
        raise ValueError("a residual spec needs 'block': the layer spec of its block")
    return spec["block"], spec.get("shortcut")


def _residual_flow(spec: Spec, run_child: Callable[..., Any], x: Any, add: Any) -> Any:
    y = run_child(0, spec["block"], x)
    return add(y, x if spec.get("shortcut") is None else run_child(1, spec["shortcut"], x))


def _residual_with(spec: Spec, children: Sequence[Spec | None]) -> Spec:
    block, shortcut = children
    return {**spec, "block": block, "shortcut": shortcut}


registry.combinator(
    "residual",
    registry.Combinator(
        children=_residual_children,
        build=lambda spec, children: residual(*children),
        with_children=_residual_with,
        flow=_residual_flow,
    ),
)

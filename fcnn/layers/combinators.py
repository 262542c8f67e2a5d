"""Combinators that build networks out of layers: :func:`serial` and :func:`residual`.

Both return an ordinary :class:`~fcnn.layers.base.Layer`, so they nest. Params,
state and caches of a combinator are tuples of its children's, in order.
"""

from __future__ import annotations

from typing import Any

from fcnn import random as fr
from fcnn.layers import fused
from fcnn.layers.base import Layer

__all__ = ["residual", "run_order", "serial"]


def _child_keys(key: fr.Key | None, n: int) -> list[fr.Key | None]:
    return [None] * n if key is None else list(fr.split(key, n))


def run_order(layers: tuple[Layer, ...]) -> list[int]:
    """The order in which :func:`serial` applies ``layers``: as given, except that a ``ReLU``
    directly before a ``MaxPool2D`` runs after it.

    Max pooling commutes with ReLU, a non-decreasing function: the outputs are the same
    values and so are the gradients, ties included (a window whose maximum is not positive
    passes no gradient either way; otherwise both route it to the same first maximum),
    while the ReLU then touches the pooled map: a quarter of the values for 2x2 windows."""
    order, i = [], 0
    while i < len(layers):
        kinds = [layer.spec.get("type") for layer in layers[i : i + 2]]
        if kinds == ["ReLU", "MaxPool2D"]:
            order += [i + 1, i]
            i += 2
        else:
            order.append(i)
            i += 1
    return order


def _steps(layers: tuple[Layer, ...], order: list[int]) -> list[tuple[int, ...]]:
    """The run ``order`` in steps of one layer, except that a ``BatchNorm2D`` whose output
    goes straight into a ``MaxPool2D`` makes one step with it (:mod:`fcnn.layers.fused`
    decides at run time whether it computes the two together)."""
    steps, k = [], 0
    while k < len(order):
        pair = tuple(order[k : k + 2])
        step = pair if tuple(layers[i].spec.get("type") for i in pair) in fused.PAIRS else pair[:1]
        steps.append(step)
        k += len(step)
    return steps


def serial(*layers: Layer) -> Layer:
    """Layers applied one after the other (in :func:`run_order`); backward runs them in
    reverse. Params, state and caches are in the order of ``layers``. In training a
    ``BatchNorm2D`` followed by a ``MaxPool2D`` runs as one step (:mod:`fcnn.layers.fused`):
    the same params, state and values, with the pair's cache at the BatchNorm's place and
    None at the pool's."""
    if not layers:
        raise ValueError("serial needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"serial: argument {i} is not a Layer: {layer!r}")
    n = len(layers)
    steps = _steps(layers, run_order(layers))

    def init(key, input_shape):
        shape, params, states = tuple(input_shape), [], []
        for layer, k in zip(layers, fr.split(key, n), strict=True):
            shape, p, s = layer.init(k, shape)
            params.append(p)
            states.append(s)
        return shape, tuple(params), tuple(states)

    def apply(params, x, *, state=None, train=False, key=None):
        states = (None,) * n if state is None else state
        keys = _child_keys(key, n)
        caches: list[Any] = [None] * n
        new_states: list[Any] = [None] * n
        for step in steps:
            if len(step) == 2 and fused.applies(params[step[0]], params[step[1]], x, train):
                bn, pool = step
                x, caches[bn], new_states[bn] = fused.forward(
                    params[bn], params[pool], x, state=states[bn]
                )
                new_states[pool] = states[pool]
                continue
            for i in step:
                x, caches[i], new_states[i] = layers[i].apply(
                    params[i], x, state=states[i], train=train, key=keys[i]
                )
        return x, tuple(caches), tuple(new_states)

    def backward(params, cache, dy, *, need_dx=True):
        grads: list[Any] = [None] * n
        for k in reversed(range(len(steps))):
            step = steps[k]
            if len(step) == 2 and isinstance(cache[step[0]], fused.BatchNormMaxPoolCache):
                bn, pool = step
                dy, (grads[bn], grads[pool]) = fused.backward(
                    params[bn], params[pool], cache[bn], dy
                )
                continue
            for position, i in reversed(list(enumerate(step))):
                dy, grads[i] = layers[i].backward(
                    params[i], cache[i], dy, need_dx=need_dx or k > 0 or position > 0
                )
        return dy, tuple(grads)

    spec = {"type": "serial", "layers": [layer.spec for layer in layers]}
    return Layer(spec=spec, init=init, apply=apply, backward=backward)


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
            return (dx + dy if need_dx else None), (g_block, None)
        dx_short, g_short = shortcut.backward(params[1], cache[1], dy, need_dx=need_dx)
        return (dx + dx_short if need_dx else None), (g_block, g_short)

    spec = {"type": "residual", "block": block.spec, "shortcut": shortcut and shortcut.spec}
    return Layer(spec=spec, init=init, apply=apply, backward=backward)

"""The fusion pass: a network rewritten to run faster, computing the same numbers.

:func:`fuse` returns a network with the same spec, params, state and outputs as the one it
is given (the gradients too), whose ``serial`` parts run adjacent layers together where
that saves passes over memory; the trainer and inference apply it, explicitly, to the
network they run (``serial`` itself composes and nothing else). In each ``serial``:

- a ``ReLU`` directly before a ``MaxPool2D`` runs after it. Max pooling commutes with ReLU,
  a non-decreasing function: the outputs are the same values and so are the gradients,
  ties included (a window whose maximum is not positive passes no gradient either way;
  otherwise both route it to the same first maximum), while the ReLU then touches the
  pooled map: a quarter of the values for 2x2 windows;
- in training, a ``BatchNorm2D`` whose output goes straight into a ``MaxPool2D`` (after the
  reordering) runs as one step with it where :func:`fcnn.layers.fused.applies`: the same
  params, state and values, with the pair's cache at the BatchNorm's place and None at the
  pool's.

BatchNorm folding (:mod:`fcnn.layers.folding`) is the other rewrite, for inference only: it
changes the params.
"""

from __future__ import annotations

from typing import Any

import attrs

from fcnn import random as fr
from fcnn.layers import fused, registry
from fcnn.layers.base import Layer

__all__ = ["fuse", "run_order"]


def fuse(net: Layer) -> Layer:
    """``net`` with every ``serial`` inside it (nested in combinators too) running its
    layers fused as the module docstring says; a network without a ``serial`` is returned
    as it is. Same spec, params, state, outputs and gradients."""
    if not net.children:
        return net
    children = tuple(None if c is None else fuse(c) for c in net.children)
    if net.name == "serial":  # the one chain of layers: the pass's patterns live in it
        return _fused_serial(net, tuple(c for c in children if c is not None))
    kind = registry.combinator_of(net.name)
    if kind is None:  # a user's layer holding layers: runs as it was built
        return net
    return kind.build(net.spec, children)


def run_order(layers: tuple[Layer, ...]) -> list[int]:
    """The order in which a fused ``serial`` applies ``layers``: as given, except that a
    ``ReLU`` directly before a ``MaxPool2D`` runs after it."""
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


def _fused_serial(net: Layer, layers: tuple[Layer, ...]) -> Layer:
    """The serial ``net`` of (fused) ``layers``, run in steps."""
    n = len(layers)
    steps = _steps(layers, run_order(layers))

    def apply(params, x, *, state=None, train=False, key=None):
        states = (None,) * n if state is None else state
        keys: list[Any] = [None] * n if key is None else list(fr.split(key, n))
        caches: list[Any] = [None] * n
        new_states: list[Any] = [None] * n
        for step in steps:
            if len(step) == 2 and fused.applies(params[step[0]], params[step[1]], x, train):
                bn, pool = step
                bn_state = states[bn]
                assert bn_state is not None  # a BatchNorm's running statistics
                x, caches[bn], new_states[bn] = fused.forward(
                    params[bn], params[pool], x, state=bn_state
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
        grad: Any = dy  # None only out of the first layer, when the caller needs no dx
        for k in reversed(range(len(steps))):
            step = steps[k]
            if len(step) == 2 and isinstance(cache[step[0]], fused.BatchNormMaxPoolCache):
                bn, pool = step
                grad, (grads[bn], grads[pool]) = fused.backward(
                    params[bn], params[pool], cache[bn], grad
                )
                continue
            for position, i in reversed(list(enumerate(step))):
                grad, grads[i] = layers[i].backward(
                    params[i], cache[i], grad, need_dx=need_dx or k > 0 or position > 0
                )
        return grad, tuple(grads)

    return attrs.evolve(net, apply=apply, backward=backward, children=layers)

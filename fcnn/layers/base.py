"""The composable form of a layer: a :class:`Layer` record of three pure functions.

Every layer module's own ``forward`` has the signature that suits it (see the
package docstring); a :class:`Layer` wraps it in the one uniform signature that
combinators thread through a network::

    layer.init(key, input_shape)                      -> (output_shape, params, state)
    layer.apply(params, x, *, state, train, key)      -> (y, cache, new_state)
    layer.backward(params, cache, dy, *, need_dx=True) -> (dx, grads)

``input_shape`` / ``output_shape`` describe one example (no batch axis).
``state`` is ``None`` for layers without state. ``need_dx=False`` lets a layer skip its
input gradient (returning None), as the first layer of a network may. ``spec`` is a
JSON-able dict from which :func:`fcnn.layers.from_spec` rebuilds the same layer.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["Layer", "module_backward", "stateless"]


@attrs.frozen(eq=False)
class Layer:
    """A layer (or a whole network) as three pure functions plus its description."""

    spec: dict[str, Any]
    init: Callable[..., tuple[tuple[int, ...], Any, Any]]
    apply: Callable[..., tuple[Any, Any, Any]]
    backward: Callable[..., tuple[Any, Any]]

    @property
    def name(self) -> str:
        return str(self.spec["type"])

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v!r}" for k, v in self.spec.items() if k not in ("type", "layers"))
        return f"{self.name}({hyper})"


def module_backward(fn: Callable[..., tuple[Any, Any]]) -> Callable[..., tuple[Any, Any]]:
    """A module's ``backward`` with the uniform ``need_dx`` keyword (passed on if it takes it)."""
    if "need_dx" in inspect.signature(fn).parameters:
        return fn

    def backward(params, cache, dy, *, need_dx=True):
        return fn(params, cache, dy)

    return backward


def stateless(spec: dict[str, Any], init_fn: Callable[..., Any], module: Any) -> Layer:
    """A :class:`Layer` for a module whose ``forward(params, x)`` needs no state, mode or key.

    ``init_fn(key, input_shape) -> (output_shape, params)``.
    """

    def init(key, input_shape):
        out_shape, params = init_fn(key, tuple(input_shape))
        return out_shape, params, None

    def apply(params, x, *, state=None, train=False, key=None):
        y, cache = module.forward(params, x)
        return y, cache, state

    return Layer(spec=spec, init=init, apply=apply, backward=module_backward(module.backward))

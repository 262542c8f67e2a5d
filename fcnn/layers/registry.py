"""Layer types by name: what :func:`fcnn.layers.from_spec` may rebuild.

A spec names its layer's type (``{"type": "Conv2D", ...}``); the registry maps that name
to the constructor that makes the layer from the spec's other keys. The built-in layers
are registered by :mod:`fcnn.layers.catalog`; a user registers their own constructor::

    @fcnn.layers.register("Scale")
    def Scale(init_scale: float = 1.0) -> Layer: ...

so a network holding it round-trips through ``spec`` / ``from_spec`` and checkpoints.
Loading a checkpoint never imports code: a checkpoint naming a type nobody registered
fails with an error saying how to load the module that registers it (``fcnn --plugin
MODULE``, ``FCNN_PLUGINS``; see :mod:`fcnn.plugins`). Built-in names cannot be taken.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from fcnn.names import claim

__all__ = [
    "Combinator",
    "builtin",
    "builtins",
    "combinator",
    "combinator_of",
    "constructor",
    "register",
    "registered",
]

_CONSTRUCTORS: dict[str, Callable[..., Any]] = {}
_BUILTIN: set[str] = set()
_COMBINATORS: dict[str, Combinator] = {}

Spec = dict[str, Any]


@attrs.frozen
class Combinator:
    """What the rest of the package needs to know of one combinator type (a layer made of
    layers), registered beside its constructor; no other module names it. The network walker
    (:mod:`fcnn.layers.network`) reads it, and through the walker the spec reader, the cost
    table, BatchNorm folding, the fusion pass, ONNX export and inference."""

    # the child specs in the order of the combinator's params tuple (None: an absent child);
    # ValueError for a malformed spec
    children: Callable[[Spec], Sequence[Spec | None]]
    # (spec, child layers in that order) -> the Layer: rebuilds it from its spec, or with
    # other children of the same params (BatchNorm-folded, fused)
    build: Callable[[Spec, Sequence[Any]], Any]
    # (spec, child specs) -> the same kind of spec with those children
    with_children: Callable[[Spec, Sequence[Spec | None]], Spec]
    # (spec, run_child, x, add) -> y: how a value passes through the children, where
    # run_child(i, child_spec, x) passes x through child i and add(a, b) sums two branches;
    # the walker runs arrays, shapes, ONNX node names and PyTorch tensors through it
    flow: Callable[..., Any]
    # (spec, [(child spec, params, state), ...], merge) -> (spec, children): BatchNorm folding
    # inside the combinator after its children are folded, where merge(a, b) is the one
    # layer that a followed by b folds into, or None; None: the children only
    fold: Callable[..., tuple[Spec, list[tuple[Any, Any, Any]]]] | None = None


def _add(name: str, fn: Callable[..., Any]) -> None:
    if name in _COMBINATORS:
        raise ValueError(f"{name!r} is a built-in combinator and cannot be registered")
    if name in _BUILTIN and _CONSTRUCTORS[name] is not fn:
        raise ValueError(f"{name!r} is a built-in layer type and cannot be overridden")
    claim(_CONSTRUCTORS, name, fn, "a layer type", "Scale")


def register(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: ``fn(**hyper) -> Layer`` makes layers of type ``name``, whose ``spec`` is
    ``{"type": name, **hyper}``. Registering the same function again (a module imported
    twice) is harmless; another function under a taken name is an error."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        _add(name, fn)
        return fn

    return decorate


def builtin(name: str, fn: Callable[..., Any]) -> None:
    """Register one of fcnn's own layer types (which users then cannot override)."""
    _add(name, fn)
    _BUILTIN.add(name)


def combinator(name: str, kind: Combinator) -> None:
    """Register fcnn's combinator type ``name`` (users cannot take the name)."""
    if name in _CONSTRUCTORS:
        raise ValueError(f"{name!r} is a layer type and cannot be a combinator")
    _COMBINATORS[name] = kind


def combinator_of(name: str) -> Combinator | None:
    """The combinator registered as ``name``; None for a layer type or an unknown name."""
    return _COMBINATORS.get(name)


def builtins() -> list[str]:
    """fcnn's own layer type names, sorted: whatever plugins a process has imported."""
    return sorted(_BUILTIN)


def registered() -> list[str]:
    """The registered type names, built-in and users', sorted."""
    return sorted(_CONSTRUCTORS)


def constructor(name: str) -> Callable[..., Any]:
    """The constructor registered under ``name``; ValueError saying how to register it."""
    fn = _CONSTRUCTORS.get(name)
    if fn is None:
        raise ValueError(
            f"unknown layer type {name!r}; known: {registered()}. If it is your own layer, "
            "import the module that registers it first (fcnn --plugin MODULE, or the "
            "FCNN_PLUGINS variable); a checkpoint never imports code by itself"
        )
    return fn

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

from collections.abc import Callable
from typing import Any

from fcnn.names import claim

__all__ = ["builtin", "constructor", "register", "registered"]

_CONSTRUCTORS: dict[str, Callable[..., Any]] = {}
_BUILTIN: set[str] = set()


def _add(name: str, fn: Callable[..., Any]) -> None:
    if name in ("serial", "residual"):
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

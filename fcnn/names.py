"""The one rule of fcnn's registries (layer types, model presets, data sets): a name is an
identifier, taken once. Registering the same function again (a plugin module imported
twice, or by another path) is harmless; another function under a taken name is an error
that names the one that took it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["claim", "qualname"]


def qualname(fn: Callable[..., Any]) -> str:
    """``module.qualified_name`` of ``fn``, for messages and for telling one function from
    another across imports."""
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def claim(
    table: dict[str, Any], name: str, fn: Callable[..., Any], what: str, example: str
) -> None:
    """Put ``fn`` into ``table`` under ``name`` (``what`` it is, e.g. "a data set", and an
    ``example`` name for the message); ValueError when the name is not an identifier or
    another function holds it."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{what} name is an identifier such as {example!r}, got {name!r}")
    known = table.get(name)
    if known is not None and known is not fn and qualname(known) != qualname(fn):
        raise ValueError(f"{what} {name!r} is registered already, by {qualname(known)}")
    table[name] = fn

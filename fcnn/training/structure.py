"""Plain data (parsed YAML) to frozen attrs objects, by the fields' type hints.

The schema lives in :mod:`fcnn.training.config`; this module knows nothing of it. Every
error is a :class:`ConfigError` naming the dotted key, what was expected and what was
found (``train.epochs: expected an integer, got 'ten'``; ``unknown key data.augmnet;
allowed keys here: ...``).

Why not cattrs, which does the same: its errors are exception groups of per-field
exceptions whose text names neither the dotted key nor the allowed keys, so keeping these
messages would take a translation layer about as long as this module, plus a dependency.
"""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Literal

import attrs
import yaml

from fcnn import tree

__all__ = ["ConfigError", "in_range", "read_yaml", "structure"]


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key and the file."""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return "a list"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"{where}: must be one of {', '.join(map(repr, args))}; got {value!r}")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # X or null: X's own message says what is wrong
            return _convert(options[0], value, where)
        for option in args:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where)
            except ConfigError:
                continue  # the next option may take it; the message below names them all
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(
            _convert(a, v, f"{where}[{i}]")
            for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if attrs.has(tp):
        return structure(tp, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{where}: expected a finite number, got {value!r}")
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    raise ConfigError(f"{where}: unsupported field type {tp!r}")  # a bug in this module


def structure(
    cls: type,
    raw: Any,
    where: str = "",
    *,
    special: Mapping[str, Callable[[Any, str], Any]] | None = None,
) -> Any:
    """An instance of the attrs class ``cls`` from plain data, every field converted by its
    type hint; ``where`` is the dotted key of ``raw`` for messages, and ``special`` converts
    the named fields of this level its own way (``fn(raw_value, key)``)."""
    special = special or {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'the config'}: expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in attrs.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown key {prefix}{unknown[0]!s}; allowed keys here: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, field in fields.items():
        key = f"{where}.{name}" if where else name
        if name not in raw:
            if field.default is attrs.NOTHING:
                raise ConfigError(f"missing required key {key}")
            continue
        if name in special:
            kwargs[name] = special[name](raw[name], key)
        else:
            kwargs[name] = _convert(hints[name], raw[name], key)
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a validator's (ConfigError is one)
        raise ConfigError(f"{where + ': ' if where else ''}{exc}") from None


class _Loader(yaml.SafeLoader):
    """Safe YAML that also reads ``1e-3`` as a number (PyYAML's YAML 1.1 wants ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _mapping_without_duplicates(loader: _Loader, node: yaml.MappingNode) -> dict:
    """A YAML mapping; a key given twice is an error (PyYAML keeps the last one silently,
    so a config's second ``lr:`` would quietly win)."""
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            continue  # construct_mapping below says it cannot be a key
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} is given twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)

MAX_DEPTH = 32  # of a config's nesting: configs nest three or four levels


def _one_line(exc: yaml.YAMLError) -> str:
    """A YAML error as one line: what is wrong and where."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{problem}{where}"


def read_yaml(text: str) -> Any:
    """Plain data from YAML text (safe loading; ``1e-3`` is a number; a key given twice and
    nesting deeper than :data:`MAX_DEPTH` are errors). ConfigError, in one line, for text
    that is not such YAML."""
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError(_one_line(exc)) from None
    except RecursionError:
        raise ConfigError(f"the YAML is nested more than {MAX_DEPTH} levels deep") from None
    if tree.nests_deeper(data, MAX_DEPTH):
        raise ConfigError(f"the YAML is nested more than {MAX_DEPTH} levels deep")
    return data


def in_range(low: float | None = None, high: float | None = None, *, open_high: bool = False):
    """An attrs validator: ``value`` (or None) within ``[low, high]`` (``[low, high)`` with
    ``open_high``); ConfigError naming the field and the bound otherwise."""

    def check(inst: Any, attr: attrs.Attribute, value: Any) -> None:
        if value is None:
            return
        if (low is not None and value < low) or (
            high is not None and (value >= high if open_high else value > high)
        ):
            bound = (
                f"[{low}, {high}{')' if open_high else ']'}" if high is not None else f">= {low}"
            )
            raise ConfigError(f"{attr.name} must be {bound}, got {value!r}")

    return check

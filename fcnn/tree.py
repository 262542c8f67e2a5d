"""Parameter trees: nested containers of arrays, and the functions that walk them.

A *tree* is built from these nodes:

- ``None``: an empty subtree (no leaves);
- ``tuple`` / ``list``: children in order;
- ``dict``: children in sorted-key order;
- an ``attrs`` instance: its fields in declaration order, except fields marked
  ``static`` (see :func:`static_field`), which hold hyperparameters and are copied,
  never mapped;
- anything else (NumPy arrays, scalars) is a *leaf*.

Every function here is pure: it never mutates a tree, it builds a new one.
Param classes are declared ``@attrs.frozen(eq=False)`` because the default
attrs equality breaks on arrays; compare trees with :func:`allclose` instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import numpy as np

__all__ = [
    "TreeDef",
    "allclose",
    "astype",
    "flatten",
    "flatten_with_paths",
    "is_static",
    "leaves",
    "map",
    "nests_deeper",
    "same_structure",
    "static_field",
    "structure_repr",
    "unflatten",
    "zeros_like",
]

_STATIC = "fcnn_static"


def static_field(**kwargs: Any) -> Any:
    """An attrs field that holds a hyperparameter: copied by tree maps, never a leaf."""
    metadata = dict(kwargs.pop("metadata", {}))
    metadata[_STATIC] = True
    return attrs.field(metadata=metadata, **kwargs)


def is_static(field: attrs.Attribute) -> bool:
    """Whether an attrs field was made by :func:`static_field` (a hyperparameter)."""
    return bool(field.metadata.get(_STATIC, False))


@functools.cache
def _leaf_fields(cls: type) -> tuple[str, ...]:
    """The names of an attrs class's non-static fields, in declaration order (computed once
    per class: tree walks run every training step)."""
    return tuple(f.name for f in attrs.fields(cls) if not is_static(f))


@functools.cache
def _kind(cls: type) -> str:
    """How a node of type ``cls`` holds its children (decided once per type: tree walks
    run several times per training step)."""
    if cls is type(None):
        return "none"
    if issubclass(cls, tuple):
        return "namedtuple" if hasattr(cls, "_fields") else "tuple"
    if issubclass(cls, list):
        return "list"
    if issubclass(cls, dict):
        return "dict"
    if attrs.has(cls):
        return "attrs"
    return "leaf"


def _children(node: Any) -> list[tuple[str, Any]] | None:
    """(name, child) pairs of a container node, or None when ``node`` is a leaf."""
    kind = _kind(type(node))
    if kind == "leaf":
        return None
    if kind == "none":
        return []
    if kind == "namedtuple":
        return list(zip(node._fields, node, strict=True))
    if kind in ("tuple", "list"):
        return [(str(i), child) for i, child in enumerate(node)]
    if kind == "dict":
        return [(str(k), node[k]) for k in sorted(node)]
    return [(name, getattr(node, name)) for name in _leaf_fields(type(node))]


def _rebuild(node: Any, children: list[Any]) -> Any:
    """A container of the same kind as ``node`` with ``children`` in place of its own."""
    kind = _kind(type(node))
    if kind == "none":
        return None
    if kind == "namedtuple":
        return type(node)(*children)
    if kind == "tuple":
        return tuple(children)
    if kind == "list":
        return list(children)
    if kind == "dict":
        return dict(zip(sorted(node), children, strict=True))
    if not children:  # only static fields: frozen, so the node itself serves
        return node
    return attrs.evolve(node, **dict(zip(_leaf_fields(type(node)), children, strict=True)))


def _iter_paths(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    children = _children(node)
    if children is None:
        yield prefix, node
        return
    for name, child in children:
        yield from _iter_paths(child, f"{prefix}.{name}" if prefix else name)


def flatten_with_paths(tree: Any) -> list[tuple[str, Any]]:
    """``[(path, leaf), ...]`` in canonical order; paths look like ``"1.w"`` or ``"conv.b"``."""
    return list(_iter_paths(tree, ""))


def leaves(tree: Any) -> list[Any]:
    """The leaves of ``tree`` in canonical order."""
    return [leaf for _, leaf in _iter_paths(tree, "")]


@attrs.frozen(eq=False)
class TreeDef:
    """The structure of a tree without its leaves; :func:`unflatten` fills it back in."""

    skeleton: Any
    num_leaves: int

    def __repr__(self) -> str:
        return f"TreeDef({structure_repr(self.skeleton)}, num_leaves={self.num_leaves})"


class _Hole:
    """Placeholder for a leaf inside a TreeDef skeleton."""

    def __repr__(self) -> str:
        return "*"


_HOLE = _Hole()


def flatten(tree: Any) -> tuple[list[Any], TreeDef]:
    """Split ``tree`` into its leaves and a :class:`TreeDef` describing the rest."""
    flat: list[Any] = []

    def hole(leaf: Any) -> _Hole:
        flat.append(leaf)  # _map visits the leaves in canonical order
        return _HOLE

    skeleton = _map(hole, tree, ())
    return flat, TreeDef(skeleton, len(flat))


def unflatten(treedef: TreeDef, new_leaves: list[Any]) -> Any:
    """Inverse of :func:`flatten`: the tree of ``treedef`` holding ``new_leaves``."""
    new_leaves = list(new_leaves)
    if len(new_leaves) != treedef.num_leaves:
        raise ValueError(
            f"unflatten: the tree has {treedef.num_leaves} leaves but {len(new_leaves)} were given"
        )
    it = iter(new_leaves)
    return map(lambda _: next(it), treedef.skeleton)


def structure_repr(tree: Any) -> str:
    """A short text form of the tree's structure (leaves shown by shape), for error messages."""
    children = _children(tree)
    if children is None:
        shape = getattr(tree, "shape", None)
        return "*" if shape is None or isinstance(tree, _Hole) else f"{tuple(shape)}"
    if tree is None:
        return "None"
    inner = ", ".join(f"{name}={structure_repr(child)}" for name, child in children)
    return f"{type(tree).__name__}({inner})"


def _same_kind(a: Any, b: Any, ca: list[tuple[str, Any]], cb: list[tuple[str, Any]]) -> bool:
    """Whether containers ``a`` and ``b`` (children ``ca``, ``cb``) match at this level:
    the same type (any two lists match) and the same child names."""
    if type(a) is not type(b) and not (isinstance(a, list) and isinstance(b, list)):
        return False
    return len(ca) == len(cb) and all(na == nb for (na, _), (nb, _) in zip(ca, cb, strict=True))


def _same_node(a: Any, b: Any) -> bool:
    ca, cb = _children(a), _children(b)
    if ca is None or cb is None:
        return ca is None and cb is None
    if not _same_kind(a, b, ca, cb):
        return False
    return all(_same_node(x, y) for (_, x), (_, y) in zip(ca, cb, strict=True))


def same_structure(a: Any, b: Any) -> bool:
    """True when ``a`` and ``b`` have the same containers, field names and leaf count."""
    return _same_node(a, b)


class _Mismatch(Exception):
    """Raised inside :func:`_map` where the trees' structures part; :func:`map` reports it."""


def map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:  # noqa: A001 - tree.map reads well
    """Apply ``fn`` leaf-wise over one or more trees of the same structure.

    Raises ``TypeError`` showing both structures when the trees differ.
    """
    try:
        return _map(fn, tree, rest)
    except _Mismatch:
        other = next(r for r in rest if not _same_node(tree, r))
        raise TypeError(
            f"tree.map: tree structures differ:\n  {structure_repr(tree)}\n"
            f"  {structure_repr(other)}"
        ) from None


def _map(fn: Callable[..., Any], tree: Any, rest: tuple[Any, ...]) -> Any:
    """:func:`map`, checking as it walks that ``rest`` matches ``tree`` (one walk, not two:
    optimizers map over several trees every step)."""
    children = _children(tree)
    others = [_children(r) for r in rest]
    if children is None:
        if any(o is not None for o in others):
            raise _Mismatch
        return fn(tree, *rest)
    for r, o in zip(rest, others, strict=True):
        if o is None or not _same_kind(tree, r, children, o):
            raise _Mismatch
    new_children = [
        _map(fn, child, tuple(o[i][1] for o in others if o is not None))
        for i, (_, child) in enumerate(children)
    ]
    return _rebuild(tree, new_children)


def zeros_like(tree: Any) -> Any:
    """A tree of the same structure with every leaf replaced by zeros of its shape and dtype."""
    return map(np.zeros_like, tree)


def astype(tree: Any, dtype: Any) -> Any:
    """Every floating-point leaf cast to ``dtype``; integer leaves are kept."""

    def cast(leaf: Any) -> Any:
        arr = np.asarray(leaf)
        return arr.astype(dtype) if np.issubdtype(arr.dtype, np.floating) else leaf

    return map(cast, tree)


def allclose(a: Any, b: Any, *, rtol: float = 1e-6, atol: float = 0.0) -> bool:
    """True when the trees have the same structure and every pair of leaves is close; the
    defaults are :func:`fcnn.testing.assert_trees_all_close`'s (one convention: relative
    1e-6, no absolute slack; a test states any other, with its reason)."""
    if not same_structure(a, b):
        return False
    return all(
        np.shape(x) == np.shape(y) and np.allclose(x, y, rtol=rtol, atol=atol)
        for x, y in zip(leaves(a), leaves(b), strict=True)
    )


def nests_deeper(value: Any, limit: int) -> bool:
    """Whether plain data (dicts and lists, as JSON and YAML parse to) nests more than
    ``limit`` levels deep; walked without recursion, so any depth is safe to ask about."""
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            if level > limit:
                return True
            stack += [(c, level + 1) for c in (node.values() if isinstance(node, dict) else node)]
    return False

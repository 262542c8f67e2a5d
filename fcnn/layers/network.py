"""The one walker of a network's structure, for everything that reads a network as a tree of
layers rather than running its ``apply``: the spec reader, the cost table, BatchNorm folding,
ONNX export, inference's feature tap and the PyTorch twin in ``benchmarks``.

A network's spec is a tree whose inner nodes are combinators (``serial``, ``residual``,
registered with a :class:`~fcnn.layers.registry.Combinator`) and whose leaves are layers. Its
params and state are trees of the same shape: a combinator's are tuples of its children's.
:func:`walk` passes a value through that tree, a leaf at a time, with the combinator's own
``flow`` deciding how values pass between its children. Nothing here names a combinator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fcnn.layers import registry

__all__ = ["Path", "child", "children", "is_combinator", "walk"]

Path = tuple[int, ...]  # the tree path of a layer's params: (3,) or (4, 0, 1) in combinators


def is_combinator(spec: dict[str, Any]) -> bool:
    """Whether ``spec`` is a combinator's (a layer made of layers)."""
    return registry.combinator_of(spec["type"]) is not None


def children(spec: dict[str, Any]) -> list[dict[str, Any] | None]:
    """A combinator's child specs in the order of its params (None for an absent child);
    ``[]`` for a layer."""
    kind = registry.combinator_of(spec["type"])
    return [] if kind is None else list(kind.children(spec))


def child(tree: Any, i: int) -> Any:
    """Child ``i`` of a combinator's params or state (None when the whole tree is None)."""
    return None if tree is None else tree[i]


Leaf = Callable[[dict[str, Any], Path, Any, Any, Any], Any]


def walk(
    spec: dict[str, Any],
    x: Any,
    leaf: Leaf,
    add: Callable[[Any, Any], Any],
    params: Any = None,
    state: Any = None,
    path: Path = (),
) -> Any:
    """``x`` passed through the network of ``spec``: each layer's value is
    ``leaf(layer_spec, path, layer_params, layer_state, value)`` and two branches that meet
    are ``add(a, b)``. ``params`` and ``state`` (optional) are split along with the spec.
    The value is whatever the caller runs: arrays (inference), shapes (costs), ONNX node
    names (export) or PyTorch tensors (benchmarks)."""
    kind = registry.combinator_of(spec["type"])
    if kind is None:
        return leaf(spec, path, params, state, x)

    def run_child(i: int, child_spec: dict[str, Any], value: Any) -> Any:
        return walk(child_spec, value, leaf, add, child(params, i), child(state, i), (*path, i))

    return kind.flow(spec, run_child, x, add)

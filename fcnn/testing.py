"""Assertions over trees, for tests of fcnn and of code built on it.

:func:`fcnn.tree.allclose` is the predicate (True or False); these fail with the structure
or the path of the first leaf that differs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fcnn import tree

__all__ = ["assert_trees_all_close", "assert_trees_all_equal", "assert_trees_all_equal_structs"]


def assert_trees_all_equal_structs(a: Any, b: Any) -> None:
    """Fail unless ``a`` and ``b`` have the same structure (containers, names, leaf count)."""
    if not tree.same_structure(a, b):
        raise AssertionError(
            f"tree structures differ:\n  {tree.structure_repr(a)}\n  {tree.structure_repr(b)}"
        )


def assert_trees_all_close(a: Any, b: Any, *, rtol: float = 1e-6, atol: float = 0.0) -> None:
    """Fail unless the trees match in structure and every leaf pair is close; names the leaf."""
    assert_trees_all_equal_structs(a, b)
    for (path, x), y in zip(tree.flatten_with_paths(a), tree.leaves(b), strict=True):
        if np.shape(x) != np.shape(y):
            raise AssertionError(f"leaf {path!r}: shapes {np.shape(x)} and {np.shape(y)} differ")
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"leaf {path!r}")


def assert_trees_all_equal(a: Any, b: Any) -> None:
    """Fail unless the trees match in structure and every leaf pair is equal bit for bit
    (what a pure function must leave of its inputs); names the leaf."""
    assert_trees_all_equal_structs(a, b)
    for (path, x), y in zip(tree.flatten_with_paths(a), tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=f"leaf {path!r}")

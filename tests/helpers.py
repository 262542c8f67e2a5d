"""Small test helpers shared across the suite."""

from __future__ import annotations

import copy

import numpy as np

from fcnn import tree


def snapshot(*trees):
    """Deep copies of trees, to compare against after a call that must not mutate them."""
    return copy.deepcopy(trees)


def assert_unchanged(before, *after):
    """Every leaf of ``after`` equals (bit for bit) the snapshot ``before``."""
    for b, a in zip(before, after, strict=True):
        for x, y in zip(tree.leaves(b), tree.leaves(a), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))

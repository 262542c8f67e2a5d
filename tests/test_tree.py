from typing import NamedTuple

import attrs
import numpy as np
import pytest

from fcnn import tree
from fcnn.testing import (
    assert_trees_all_close,
    assert_trees_all_equal,
    assert_trees_all_equal_structs,
)


@attrs.frozen(eq=False)
class P:
    w: np.ndarray
    b: np.ndarray
    stride: int = tree.static_field(default=2)


@attrs.frozen(eq=False)
class Hyper:
    rate: float = tree.static_field(default=0.5)


class S(NamedTuple):
    count: int
    mu: object


def sample():
    return (P(np.ones((2, 3)), np.zeros(3)), None, {"z": np.arange(2.0), "a": [np.eye(2)]})


def test_leaves_and_paths_follow_canonical_order():
    paths = [p for p, _ in tree.flatten_with_paths(sample())]
    assert paths == ["0.w", "0.b", "2.a.0", "2.z"]
    assert len(tree.leaves(sample())) == 4


def test_static_fields_are_not_leaves_and_survive_map():
    t = tree.map(lambda x: x * 2, P(np.ones(2), np.ones(1), stride=5))
    assert t.stride == 5
    np.testing.assert_array_equal(t.w, [2.0, 2.0])


def test_namedtuple_paths_use_field_names():
    assert [p for p, _ in tree.flatten_with_paths(S(1, np.ones(2)))] == ["count", "mu"]


def test_flatten_unflatten_round_trip():
    leaves, treedef = tree.flatten(sample())
    rebuilt = tree.unflatten(treedef, [x + 1 for x in leaves])
    assert_trees_all_close(rebuilt, tree.map(lambda x: x + 1, sample()))
    assert isinstance(rebuilt[0], P) and rebuilt[1] is None


def test_unflatten_rejects_wrong_leaf_count():
    _, treedef = tree.flatten(sample())
    with pytest.raises(ValueError, match="4 leaves but 3"):
        tree.unflatten(treedef, [1, 2, 3])


def test_map_over_mismatched_trees_raises_type_error_with_both_structures():
    with pytest.raises(TypeError, match="structures differ") as info:
        tree.map(lambda a, b: a + b, (np.ones(1),), (np.ones(1), np.ones(1)))
    assert "tuple(0=(1,))" in str(info.value)


@pytest.mark.parametrize(
    "other",
    [
        (np.ones(1), np.ones(1)),  # a leaf where the first tree has a dict
        (np.ones(1), [np.ones(1)]),  # a list where the first tree has a dict
        (np.ones(1), {"b": np.ones(1)}),  # another key
        ((np.ones(1),), {"a": np.ones(1)}),  # a tuple where the first tree has a leaf
    ],
)
def test_map_finds_mismatches_below_the_root(other):
    first = (np.ones(1), {"a": np.ones(1)})
    with pytest.raises(TypeError, match="structures differ") as info:
        tree.map(lambda a, b: a + b, first, other)
    assert tree.structure_repr(first) in str(info.value)
    assert tree.structure_repr(other) in str(info.value)


def test_map_keeps_leafless_attrs_nodes_and_rebuilds_the_rest():
    t = (P(np.ones(2), np.zeros(1)), None, [np.ones(1)])
    hyper = Hyper()
    mapped = tree.map(lambda x: x * 2, (*t, hyper))
    assert mapped[3] is hyper  # only static fields: frozen, nothing to rebuild
    assert isinstance(mapped[0], P) and mapped[0] is not t[0] and mapped[1] is None
    assert isinstance(mapped[2], list) and mapped[2] is not t[2]
    np.testing.assert_array_equal(mapped[0].w, [2.0, 2.0])


def test_flatten_order_is_the_leaves_order():
    t = sample()
    leaves, treedef = tree.flatten(t)
    assert [id(x) for x in leaves] == [id(x) for x in tree.leaves(t)]
    assert treedef.num_leaves == 4


def test_zeros_like_and_astype_and_allclose():
    t = sample()
    z = tree.zeros_like(t)
    assert all(np.all(x == 0) for x in tree.leaves(z))
    t32 = tree.astype(t, np.float32)
    assert all(x.dtype == np.float32 for x in tree.leaves(t32))
    assert tree.allclose(t, t32)
    assert not tree.allclose(t, z)
    assert not tree.allclose(t, (t[0],))


def test_assert_helpers_name_the_leaf():
    a = sample()
    b = tree.map(lambda x: x + 1, a)
    with pytest.raises(AssertionError, match=r"0\.w"):
        assert_trees_all_close(a, b)
    with pytest.raises(AssertionError, match="structures differ"):
        assert_trees_all_equal_structs(a, a[:2])
    assert_trees_all_equal(a, tree.map(lambda x: x.copy(), a))
    with pytest.raises(AssertionError, match=r"0\.w"):  # bit for bit: 1 ulp is a difference
        assert_trees_all_equal(a, tree.map(lambda x: np.nextafter(x, np.inf), a))


def test_map_does_not_mutate_input():
    t = sample()
    before = [x.copy() for x in tree.leaves(t)]
    tree.map(lambda x: x * 0, t)
    for x, y in zip(tree.leaves(t), before, strict=True):
        np.testing.assert_array_equal(x, y)


def test_nests_deeper_counts_dicts_and_lists_without_recursion():
    assert not tree.nests_deeper({"a": [1, {"b": 2}]}, 3)
    assert tree.nests_deeper({"a": [1, {"b": 2}]}, 2)
    assert not tree.nests_deeper(5, 0)
    deep: object = 0
    for _ in range(100_000):  # far past Python's recursion limit
        deep = [deep]
    assert tree.nests_deeper(deep, 64)

import numpy as np

from fcnn import models, tree
from fcnn import random as fr
from fcnn.distributed import from_buffer, to_buffer


def test_a_parameter_tree_survives_the_round_trip_through_one_buffer():
    preset = models.get("bn_net_mnist")
    _, params, state = preset.network.init(fr.key(0), preset.input_shape)
    buf, layout = to_buffer(params, extra=np.array([2.5, 7.0]))
    assert buf.ndim == 1 and buf.size == sum(leaf.size for leaf in tree.leaves(params)) + 2
    back, extra = from_buffer(buf, layout)
    assert tree.same_structure(back, params)
    for a, b in zip(tree.leaves(back), tree.leaves(params), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(extra, [2.5, 7.0])


def test_reading_back_copies_so_the_buffer_can_be_reused():
    t = {"a": np.ones((2, 3), np.float32), "b": np.arange(4.0)}
    buf, layout = to_buffer(t, dtype=np.float64)
    back, _ = from_buffer(buf, layout)
    buf[:] = -1.0
    np.testing.assert_array_equal(back["a"], np.ones((2, 3)))
    np.testing.assert_array_equal(back["b"], np.arange(4.0))
    assert back["b"].dtype == np.float64

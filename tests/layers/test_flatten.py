import numpy as np

from fcnn import check_grad
from fcnn import random as fr
from fcnn.layers import flatten


def test_flatten_round_trip_and_gradient():
    shape, params = flatten.init(fr.key(0), (2, 3, 4))
    x = np.arange(48.0).reshape(2, 2, 3, 4)
    y, cache = flatten.forward(params, x)
    assert shape == (24,) and y.shape == (2, 24)
    np.testing.assert_array_equal(flatten.backward(params, cache, y)[0], x)
    check_grad(flatten.forward, flatten.backward, params, x)

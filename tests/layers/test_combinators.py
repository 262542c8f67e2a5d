import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import distinct_values

from fcnn import check_grad, tree
from fcnn import layers as L
from fcnn import random as fr
from fcnn.layers import batchnorm


def _check_network(net, in_shape, x, train):
    _, params, state = net.init(fr.key(0), in_shape)
    params = tree.map(lambda p: p + 0.1 * fr.generator(fr.key(9)).standard_normal(p.shape), params)

    def forward(p, v):
        y, cache, _ = net.apply(
            p, v, state=tree.astype(state, np.float64), train=train, key=fr.key(4)
        )
        return y, cache

    return check_grad(forward, net.backward, params, x, atol=1e-5, rtol=1e-4)


@settings(max_examples=5)
@given(st.data(), st.booleans())
def test_small_network_end_to_end_gradient(data, train):
    # conv -> BN -> ReLU -> pool -> dense, with distinct inputs so max-pool never ties
    net = L.serial(
        L.Conv2D(2, 3, padding=1),
        L.BatchNorm2D(),
        L.Tanh(),
        L.MaxPool2D(2),
        L.Flatten(),
        L.Dense(3),
        L.Dropout(0.3),
    )
    x = data.draw(distinct_values((2, 1, 4, 4), gap=0.1), label="x")
    errors = _check_network(net, (1, 4, 4), x, train)
    assert {"x", "0.w", "0.b", "1.gamma", "1.beta", "5.w", "5.b"} <= set(errors)


@settings(max_examples=5)
@given(st.data())
def test_residual_block_gradient(data):
    block = L.serial(L.Conv2D(2, 3, padding=1), L.Tanh(), L.Conv2D(2, 3, padding=1))
    net = L.serial(L.residual(block), L.residual(L.Conv2D(3, 1), L.Conv2D(3, 1)), L.Sigmoid())
    x = data.draw(distinct_values((2, 2, 3, 3), gap=0.1), label="x")
    errors = _check_network(net, (2, 3, 3), x, train=True)
    assert {"0.0.0.w", "1.0.w", "1.1.w"} <= set(errors)


def test_serial_threads_state_and_splits_keys():
    net = L.serial(L.BatchNorm1D(), L.Dropout(0.5), L.Dropout(0.5))
    _, params, state = net.init(fr.key(0), (8,))
    x = np.ones((4, 8), np.float32) + np.arange(4, dtype=np.float32)[:, None]
    _, cache, new_state = net.apply(params, x, state=state, train=True, key=fr.key(1))
    assert not np.allclose(new_state[0].mean, state[0].mean)  # running mean moved
    assert not np.array_equal(cache[1].mask, cache[2].mask)  # each dropout got its own key


def test_serial_composes_and_nothing_else():
    """Each layer runs on its own, in the given order: a ReLU before a max pool sees the
    full-size map and BatchNorm keeps its own cache (fusion is fcnn.layers.fuse's)."""
    net = L.serial(L.BatchNorm2D(), L.ReLU(), L.MaxPool2D(2))
    _, params, state = net.init(fr.key(0), (2, 4, 4))
    x = fr.generator(fr.key(1)).standard_normal((3, 2, 4, 4))
    y, caches, _ = net.apply(params, x, state=state, train=True)
    assert isinstance(caches[0], batchnorm.TrainCache)
    assert caches[1].saved.shape == (3, 2, 4, 4) and y.shape == (3, 2, 2, 2)


@settings(max_examples=10)
@given(st.data())
def test_relu_then_max_pool_gradient_matches_finite_differences(data):
    net = L.serial(L.Conv2D(2, 3, padding=1), L.ReLU(), L.MaxPool2D(2), L.Flatten(), L.Dense(2))
    x = data.draw(distinct_values((2, 1, 4, 4), gap=0.1), label="x")
    errors = _check_network(net, (1, 4, 4), x, train=True)
    assert {"x", "0.w", "4.w"} <= set(errors)

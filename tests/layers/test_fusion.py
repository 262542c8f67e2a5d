"""The fusion pass: a network that runs faster and computes the same numbers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import pool_geometry

from fcnn import layers as L
from fcnn import models, tree
from fcnn import random as fr
from fcnn.layers import activations, fused, pooling
from fcnn.layers.fusion import run_order


def test_a_relu_right_before_a_max_pool_runs_after_it():
    relu, pool, bn = L.ReLU(), L.MaxPool2D(2), L.BatchNorm2D()
    assert run_order((bn, relu, pool, relu)) == [0, 2, 1, 3]
    assert run_order((relu, pool, relu, pool)) == [1, 0, 3, 2]
    assert run_order((pool, relu, L.AvgPool2D(2), L.Tanh(), pool)) == [0, 1, 2, 3, 4]


@given(pool_geometry(), st.integers(0, 2**32 - 1))
def test_relu_then_max_pool_gives_the_same_values_and_gradients_in_either_order(geometry, seed):
    """The reordered pair against ReLU then pooling by the module functions, exactly: many
    ties and non-positive windows (values from {-2, ..., 2}), overlapping and padded windows."""
    shape, win, stride, pad = geometry
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, shape).astype(np.float64)
    net = L.fuse(L.serial(L.ReLU(), L.MaxPool2D(win, stride, pad)))
    _, (relu_p, pool_p), state = net.init(fr.key(0), shape[1:])
    y, cache, _ = net.apply((relu_p, pool_p), x, state=state)
    dy = rng.standard_normal(y.shape)
    dx, _ = net.backward((relu_p, pool_p), cache, dy)

    r, r_cache = activations.forward(relu_p, x)
    expected_y, p_cache = pooling.forward(pool_p, r)
    expected_dx, _ = activations.backward(relu_p, r_cache, pooling.backward(pool_p, p_cache, dy)[0])
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(dx, expected_dx)


def _block(channels):
    return [L.Conv2D(channels, 3, padding=1), L.BatchNorm2D(), L.ReLU()]


NETWORKS = {
    # every pattern the pass rewrites, nested in residual and serial combinators
    "conv-bn-relu-pool": lambda: L.serial(
        *_block(3),
        L.MaxPool2D(2),
        L.Conv2D(2, 3, padding=1),
        L.ReLU(),
        L.MaxPool2D(2),
        L.Flatten(),
        L.Dropout(0.3),
        L.Dense(3),
    ),
    "residual": lambda: L.serial(
        *_block(2),
        L.residual(L.serial(*_block(2), L.BatchNorm2D(), L.MaxPool2D(1))),
        L.residual(
            L.serial(L.Conv2D(2, 3, padding=1), L.BatchNorm2D(), L.MaxPool2D(2)), L.MaxPool2D(2)
        ),
        L.GlobalAvgPool2D(),
        L.Dense(3),
    ),
    # BatchNorm without a learned scale, before and after pooling (airbench's blocks)
    "unscaled-bn-gelu": lambda: L.serial(
        L.Conv2D(3, 3, padding=1),
        L.BatchNorm2D(scale=False),
        L.MaxPool2D(2),
        L.GELU(),
        L.Conv2D(2, 3, padding=1),
        L.MaxPool2D(2),
        L.BatchNorm2D(momentum=0.6, eps=1e-12, scale=False),
        L.GELU(),
        L.Flatten(),
        L.Dense(3),
        L.Multiply(1 / 9),
    ),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**16), train=st.booleans())
def test_the_fused_network_computes_what_the_plain_composition_does(name, seed, train):
    """Outputs, new state and every gradient, in training (BatchNorm then pooling as one
    step) and eval, in float64: the fused BatchNorm sums its variance chunk by chunk, a
    different order of the same sum, so the two agree to float64 rounding, not bit for bit."""
    plain = NETWORKS[name]()
    net = L.fuse(plain)
    assert net.spec == plain.spec
    _, params, state = plain.init(fr.key(seed), (2, 8, 8))
    params, state = tree.astype(params, np.float64), tree.astype(state, np.float64)
    x = fr.generator(fr.key(seed + 1)).standard_normal((4, 2, 8, 8))
    results = []
    for layer in (plain, net):
        y, cache, new_state = layer.apply(params, x, state=state, train=train, key=fr.key(7))
        dy = fr.generator(fr.key(seed + 2)).standard_normal(y.shape)
        dx, grads = layer.backward(params, cache, dy)
        results.append((y, new_state, dx, grads))
    (y0, s0, dx0, g0), (y1, s1, dx1, g1) = results
    np.testing.assert_allclose(y1, y0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx1, dx0, rtol=1e-10, atol=1e-12)
    assert tree.allclose(s1, s0, rtol=1e-10, atol=1e-12)
    assert tree.allclose(g1, g0, rtol=1e-10, atol=1e-12)


def test_the_pass_fuses_inside_combinators():
    net = L.fuse(NETWORKS["residual"]())
    _, params, state = net.init(fr.key(0), (2, 8, 8))
    x = fr.generator(fr.key(1)).standard_normal((4, 2, 8, 8))
    _, caches, _ = net.apply(params, x, state=state, train=True)
    inner = caches[4][0]  # the second residual's block: Conv2D, BatchNorm2D, MaxPool2D
    assert isinstance(inner[1], fused.BatchNormMaxPoolCache) and inner[2] is None


@pytest.mark.parametrize("name", ["bn_net_mnist", "dermascan_cnn", "lenet_mnist"])
def test_presets_keep_their_spec_and_params_through_the_pass(name):
    preset = models.get(name)
    net = L.fuse(preset.network)
    assert net.spec == preset.network.spec
    _, plain_params, _ = preset.network.init(fr.key(0), preset.input_shape)
    _, fused_params, _ = net.init(fr.key(0), preset.input_shape)
    assert tree.allclose(fused_params, plain_params)

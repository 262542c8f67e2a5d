import numpy as np
import pytest
from helpers import assert_unchanged, snapshot
from hypothesis import given
from hypothesis import strategies as st
from strategies import distinct_values, smooth_arrays
from thread_replicas import assert_synchronized_shards_equal_the_whole

from fcnn import check_grad
from fcnn import random as fr
from fcnn.layers import (
    BatchNorm2D,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    activations,
    batchnorm,
    fuse,
    fused,
    pooling,
    serial,
)


@st.composite
def fused_pair(draw, zero_gamma: bool = False):
    """(BatchNorm params, state, MaxPool params, x) in float64: γ of either sign (or 0 with
    ``zero_gamma``),
    distinct input values, windows that tile the input, with sides that may leave a
    remainder the windows do not cover."""
    win = (draw(st.integers(1, 3), label="kh"), draw(st.integers(1, 3), label="kw"))
    sides = [draw(st.integers(max(w, 2), 7), label="side") for w in win]
    n, c = draw(st.integers(1, 3), label="batch"), draw(st.integers(1, 3), label="channels")
    shape = (n, c, *sides)
    magnitude = draw(smooth_arrays((c,), low=0.5, high=2.0), label="|gamma|")
    signs = [-1.0, 0.0, 1.0] if zero_gamma else [-1.0, 1.0]
    sign = draw(st.lists(st.sampled_from(signs), min_size=c, max_size=c), label="sign")
    bn = batchnorm.BatchNormParams(
        gamma=magnitude * np.array(sign), beta=draw(smooth_arrays((c,)), label="beta")
    )
    state = batchnorm.BatchNormState(
        mean=draw(smooth_arrays((c,)), label="mean"),
        var=draw(smooth_arrays((c,), low=0.5, high=2.0), label="var"),
    )
    pool = pooling.MaxPool2DParams(window=win, stride=win)
    x = draw(distinct_values(shape), label="x")
    return bn, state, pool, x


def _unfused(bn, state, pool, x, dy):
    """The two layers in turn: (y, new state, dx, BatchNorm's params gradient)."""
    y_bn, c_bn, new_state = batchnorm.forward(bn, x, state=state, train=True)
    y, c_pool = pooling.forward(pool, y_bn)
    d_bn_out, _ = pooling.backward(pool, c_pool, dy)
    dx, d_bn = batchnorm.backward(bn, c_bn, d_bn_out)
    return y, new_state, dx, d_bn


@given(fused_pair(zero_gamma=True), st.integers(0, 2**32 - 1))
def test_fused_step_equals_the_two_layers_in_turn(pair, seed):
    bn, state, pool, x = pair
    if not np.all(bn.gamma != 0):  # a zero γ: the pair runs as the two layers (see applies)
        assert not fused.applies(bn, pool, x, train=True)
        bn = batchnorm.BatchNormParams(gamma=np.where(bn.gamma == 0, 1.0, bn.gamma), beta=bn.beta)
    assert fused.applies(bn, pool, x, train=True)
    before = snapshot(bn, state, x)
    y, cache, new_state = fused.forward(bn, pool, x, state=state)
    dy = np.random.default_rng(seed).standard_normal(y.shape)
    dx, (d_bn, d_pool) = fused.backward(bn, pool, cache, dy)
    assert_unchanged(before, bn, state, x)
    want_y, want_state, want_dx, want_bn = _unfused(bn, state, pool, x, dy)
    # float64, and the variance summed chunk by chunk rather than in one pass: 1e-12
    np.testing.assert_allclose(y, want_y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(new_state.mean, want_state.mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(new_state.var, want_state.var, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(d_bn.gamma, want_bn.gamma, rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(d_bn.beta, want_bn.beta, rtol=1e-10, atol=1e-11)
    assert d_pool is pool


@given(st.integers(0, 2**32 - 1), st.sampled_from([-1.0, 1.0]))
def test_ties_go_to_the_first_maximum_as_in_the_unfused_layers(seed, sign):
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=(2, 2, 4, 6)).astype(np.float64)  # many tied windows
    x[:, :, 0, 0] = 10.0  # every channel has a clearly non-zero variance
    bn = batchnorm.BatchNormParams(gamma=np.array([sign * 1.5, 0.75]), beta=np.array([0.2, -1]))
    _, _, state = batchnorm.init(fr.key(0), (2, 4, 6), dtype=np.float64)
    pool = pooling.MaxPool2DParams()
    y, cache, _ = fused.forward(bn, pool, x, state=state)
    dy = rng.standard_normal(y.shape)
    dx, _ = fused.backward(bn, pool, cache, dy)
    want_y, _, want_dx, _ = _unfused(bn, state, pool, x, dy)
    np.testing.assert_allclose(y, want_y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-9, atol=1e-11)


@given(fused_pair())
def test_fused_step_matches_finite_differences(pair):
    bn, state, pool, x = pair

    def backward(p, cache, dy):
        dx, (d_bn, _) = fused.backward(p, pool, cache, dy)
        return dx, d_bn

    check_grad(
        lambda p, v: fused.forward(p, pool, v, state=state)[:2],
        backward,
        bn,
        x,
        atol=1e-5,
        rtol=1e-4,
    )


def test_float32_stays_float32():
    pool = pooling.MaxPool2DParams()
    bn = batchnorm.BatchNormParams(
        gamma=np.array([1, -2], np.float32), beta=np.zeros(2, np.float32)
    )
    _, _, state = batchnorm.init(fr.key(0), (2, 4, 4))
    x = np.random.default_rng(0).standard_normal((3, 2, 4, 4)).astype(np.float32)
    y, cache, new_state = fused.forward(bn, pool, x, state=state)
    dx, (d_bn, _) = fused.backward(bn, pool, cache, np.ones_like(y))
    assert {y.dtype, dx.dtype, d_bn.gamma.dtype, d_bn.beta.dtype, new_state.var.dtype} == {
        np.dtype(np.float32)
    }


def test_fusion_applies_only_to_training_with_tiled_windows():
    _, bn, _ = batchnorm.init(fr.key(0), (2, 4, 4))
    x = np.zeros((1, 2, 4, 4), np.float32)
    assert fused.applies(bn, pooling.MaxPool2DParams(), x, train=True)
    assert not fused.applies(bn, activations.ReLUParams(), x, train=True)
    assert not fused.applies(bn, pooling.MaxPool2DParams(), x, train=False)
    overlapping = pooling.MaxPool2DParams(window=(3, 3), stride=(2, 2))
    assert not fused.applies(bn, overlapping, x, train=True)
    padded = pooling.MaxPool2DParams(padding=(1, 1))
    assert not fused.applies(bn, padded, x, train=True)
    assert not fused.applies(bn, pooling.AvgPool2DParams(), x, train=True)


def test_a_single_value_per_channel_is_an_error_as_in_batchnorm():
    _, bn, state = batchnorm.init(fr.key(0), (3, 1, 1))
    with pytest.raises(ValueError, match="more than one value per channel"):
        fused.forward(bn, pooling.MaxPool2DParams(window=(1, 1), stride=(1, 1)),
                      np.ones((1, 3, 1, 1), np.float32), state=state)  # fmt: skip


def _net():
    return fuse(serial(
        Conv2D(3, 3, padding=1), BatchNorm2D(), ReLU(),
        Conv2D(2, 3, padding=1), BatchNorm2D(), ReLU(), MaxPool2D(2),  # BatchNorm -> pool
        Flatten(), Dense(2),
    ))  # fmt: skip


def test_the_fusion_pass_runs_the_pair_fused_in_training_and_unfused_in_eval():
    net = _net()
    _, params, state = net.init(fr.key(1), (2, 6, 5))
    x = np.random.default_rng(2).standard_normal((3, 2, 6, 5))
    _, caches, new_state = net.apply(params, x, state=state, train=True)
    assert isinstance(caches[1], batchnorm.TrainCache)  # BatchNorm -> ReLU stays two layers
    assert isinstance(caches[4], fused.BatchNormMaxPoolCache)
    assert caches[6] is None
    assert isinstance(caches[5], activations.ActivationCache)  # the ReLU after the pool
    assert new_state[6] is state[6]
    _, caches, _ = net.apply(params, x, state=state, train=False)
    assert isinstance(caches[4], batchnorm.EvalCache)


def test_a_fused_network_matches_finite_differences():
    net = _net()
    _, params, state = net.init(fr.key(3), (2, 6, 5))
    x = np.random.default_rng(4).standard_normal((3, 2, 6, 5))
    check_grad(
        lambda p, v: net.apply(p, v, state=state, train=True)[:2],
        net.backward,
        params,
        x,
        atol=1e-5,
        rtol=1e-4,
    )


def test_synchronized_fused_step_over_shards_equals_the_whole_batch():
    pool = pooling.MaxPool2DParams()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 3, 4, 4))
    _, bn, state = batchnorm.init(fr.key(0), (3, 4, 4), dtype=np.float64)
    bn = batchnorm.BatchNormParams(gamma=np.array([1.5, -0.5, 1]), beta=rng.standard_normal(3))

    def step(x, dy):
        y, cache, new_state = fused.forward(bn, pool, x, state=state)
        dx, (grads, _) = fused.backward(bn, pool, cache, dy)
        return y, dx, grads, new_state

    assert_synchronized_shards_equal_the_whole(step, x, rng.standard_normal((6, 3, 2, 2)))


def test_a_fused_net_with_a_zero_gamma_gets_the_two_layers_gradients():
    net = fuse(serial(BatchNorm2D(), MaxPool2D(2)))
    x = np.random.default_rng(3).standard_normal((2, 2, 4, 4))
    _, params, state = net.init(fr.key(0), (2, 4, 4))
    bn = batchnorm.BatchNormParams(gamma=np.array([0.0, 1.5]), beta=np.array([0.3, -0.2]))
    params = (bn, params[1])
    y, cache, _ = net.apply(params, x, state=state, train=True)
    dy = np.random.default_rng(4).standard_normal(y.shape)
    dx, grads = net.backward(params, cache, dy)
    want_y, _, want_dx, want_bn = _unfused(bn, state[0], params[1], x, dy)
    np.testing.assert_allclose(y, want_y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-12)
    # the tied windows of the zero-γ channel send dy to their first element, as MaxPool2D does
    np.testing.assert_allclose(grads[0].gamma, want_bn.gamma, rtol=1e-12, atol=1e-12)

import numpy as np
import pytest
from helpers import assert_unchanged, snapshot
from hypothesis import given
from hypothesis import strategies as st
from strategies import smooth_arrays

from fcnn import check_grad
from fcnn import random as fr
from fcnn.layers import batchnorm


def _draw(data):
    ndim = data.draw(st.sampled_from([2, 4]), label="ndim")
    c = data.draw(st.integers(1, 3), label="channels")
    n = data.draw(st.integers(2, 3), label="batch")
    shape = (
        (n, c) if ndim == 2 else (n, c, data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    )
    _, params, state = batchnorm.init(fr.key(0), shape[1:], dtype=np.float64)
    params = batchnorm.BatchNormParams(
        gamma=data.draw(smooth_arrays((c,), low=0.5, high=2.0), label="gamma"),
        beta=data.draw(smooth_arrays((c,)), label="beta"),
    )
    state = batchnorm.BatchNormState(
        mean=data.draw(smooth_arrays((c,)), label="mean"),
        var=data.draw(smooth_arrays((c,), low=0.5, high=2.0), label="var"),
    )
    # spread values so every channel has a clearly non-zero batch variance
    x = data.draw(smooth_arrays(shape), label="x") + np.arange(np.prod(shape)).reshape(shape) * 0.3
    return params, state, x


@given(st.data(), st.booleans())
def test_backward_matches_finite_differences_in_both_modes(data, train):
    params, state, x = _draw(data)
    check_grad(
        lambda p, v: batchnorm.forward(p, v, state=state, train=train)[:2],
        batchnorm.backward,
        params,
        x,
        atol=1e-5,
        rtol=1e-4,
    )


@given(st.data())
def test_training_normalizes_and_updates_running_stats_purely(data):
    params, state, x = _draw(data)
    before = snapshot(params, state, x)
    y, _, new_state = batchnorm.forward(params, x, state=state, train=True)
    assert_unchanged(before, params, state, x)
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    bshape = (1, -1) + (1,) * (x.ndim - 2)
    x_hat = (y - params.beta.reshape(bshape)) / params.gamma.reshape(bshape)
    np.testing.assert_allclose(x_hat.mean(axis=axes), 0, atol=1e-9)
    m = x.size // x.shape[1]
    want_var = 0.9 * state.var + 0.1 * x.var(axis=axes) * m / (m - 1)
    np.testing.assert_allclose(new_state.var, want_var)
    np.testing.assert_allclose(new_state.mean, 0.9 * state.mean + 0.1 * x.mean(axis=axes))


def test_eval_mode_uses_running_statistics():
    _, params, _ = batchnorm.init(fr.key(0), (2,), dtype=np.float64)
    state = batchnorm.BatchNormState(mean=np.array([1.0, -1.0]), var=np.array([4.0, 0.25]))
    x = np.array([[3.0, 0.0], [1.0, -1.5]])
    y, _, new_state = batchnorm.forward(params, x, state=state, train=False)
    np.testing.assert_allclose(y, (x - state.mean) / np.sqrt(state.var + 1e-5))
    assert new_state is state


def test_training_with_a_single_value_per_channel_is_an_error():
    _, params, state = batchnorm.init(fr.key(0), (3,))
    with pytest.raises(ValueError, match="more than one value per channel"):
        batchnorm.forward(params, np.ones((1, 3), np.float32), state=state, train=True)


def test_float32_stays_float32():
    _, params, state = batchnorm.init(fr.key(0), (2, 3, 3))
    x = np.ones((2, 2, 3, 3), np.float32)
    y, cache, new_state = batchnorm.forward(params, x, state=state, train=True)
    dx, g = batchnorm.backward(params, cache, y)
    assert {y.dtype, dx.dtype, g.gamma.dtype, new_state.var.dtype} == {np.dtype(np.float32)}


@given(st.data(), st.booleans())
def test_without_a_learned_scale_the_gradients_check_and_gamma_gets_none(data, train):
    params, state, x = _draw(data)
    unscaled = batchnorm.BatchNormParams(gamma=None, beta=params.beta, scale=False)
    errors = check_grad(
        lambda p, v: batchnorm.forward(p, v, state=state, train=train)[:2],
        batchnorm.backward,
        unscaled,
        x,
        atol=1e-5,
        rtol=1e-4,
    )
    assert set(errors) == {"x", "beta"}  # one leaf: the shift
    y, cache, _ = batchnorm.forward(unscaled, x, state=state, train=train)
    _, grads = batchnorm.backward(unscaled, cache, np.ones_like(y))
    assert grads.gamma is None and grads.beta.shape == params.beta.shape


@given(st.data(), st.booleans())
def test_without_a_learned_scale_it_is_the_layer_with_gamma_one(data, train):
    params, state, x = _draw(data)
    ones = batchnorm.BatchNormParams(gamma=np.ones_like(params.beta), beta=params.beta)
    unscaled = batchnorm.BatchNormParams(gamma=None, beta=params.beta, scale=False)
    y_ones, _, s_ones = batchnorm.forward(ones, x, state=state, train=train)
    y_none, _, s_none = batchnorm.forward(unscaled, x, state=state, train=train)
    np.testing.assert_array_equal(y_none, y_ones)  # the same arithmetic, γ = 1 either way
    np.testing.assert_array_equal(s_none.var, s_ones.var)


def test_scale_false_through_the_constructor_spec_and_checks():
    from fcnn.layers import BatchNorm2D, from_spec

    layer = BatchNorm2D(momentum=0.6, eps=1e-12, scale=False)
    assert layer.spec == {"type": "BatchNorm2D", "momentum": 0.6, "eps": 1e-12, "scale": False}
    _, params, _ = from_spec(layer.spec).init(fr.key(0), (4, 3, 3))
    assert params.gamma is None and params.momentum == 0.6
    with pytest.raises(ValueError, match="gamma is None exactly when scale=False"):
        batchnorm.BatchNormParams(gamma=None, beta=np.zeros(2))

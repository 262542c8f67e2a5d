import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import away_from_zero, smooth_arrays

from fcnn import check_grad
from fcnn.layers import activations as act

PARAMS = [
    act.ReLUParams(),
    act.LeakyReLUParams(negative_slope=0.2),
    act.SigmoidParams(),
    act.TanhParams(),
    act.SoftmaxParams(),
]


@pytest.mark.parametrize("params", PARAMS, ids=lambda p: type(p).__name__)
@given(data=st.data())
def test_backward_matches_finite_differences(params, data):
    shape = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4)))
    x = data.draw(away_from_zero(shape), label="x")
    check_grad(act.forward, act.backward, params, x)


def test_values():
    x = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(act.forward(act.ReLUParams(), x)[0], [[0, 0, 3]])
    np.testing.assert_allclose(act.forward(act.LeakyReLUParams(0.1), x)[0], [[-0.2, 0, 3]])
    np.testing.assert_allclose(act.forward(act.SigmoidParams(), x)[0], 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(act.forward(act.TanhParams(), x)[0], np.tanh(x))
    sm = act.forward(act.SoftmaxParams(), x)[0]
    np.testing.assert_allclose(sm, np.exp(x) / np.exp(x).sum())


@given(smooth_arrays((2, 5), low=-1000, high=1000))
def test_sigmoid_and_softmax_never_overflow(x):
    for params in (act.SigmoidParams(), act.SoftmaxParams()):
        y = act.forward(params, x)[0]
        assert np.all(np.isfinite(y))
    np.testing.assert_allclose(act.forward(act.SoftmaxParams(), x)[0].sum(axis=1), 1.0)


def test_relu_gradient_at_zero_is_zero_and_dtype_is_kept():
    x = np.zeros((1, 3), np.float32)
    for params in PARAMS:
        y, cache = act.forward(params, x)
        dx, _ = act.backward(params, cache, np.ones_like(y))
        assert y.dtype == dx.dtype == np.float32
    dx, _ = act.backward(act.ReLUParams(), act.forward(act.ReLUParams(), x)[1], np.ones_like(x))
    np.testing.assert_array_equal(dx, 0)


def test_unknown_activation():
    with pytest.raises(ValueError, match="choose one of"):
        act.init(None, (3,), kind="swish")

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
    act.GELUParams(),
    act.MultiplyParams(factor=1 / 9),
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


def test_gelu_is_pytorchs_tanh_approximation_and_near_the_exact_gelu():
    from math import erf, pi, sqrt

    x = np.linspace(-6, 6, 241)
    y = act.forward(act.GELUParams(), x)[0]
    tanh_form = 0.5 * x * (1 + np.tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(y, tanh_form, rtol=1e-12, atol=1e-15)  # float64: the formula
    exact = x * 0.5 * (1 + np.array([erf(v / sqrt(2)) for v in x]))
    assert np.abs(y - exact).max() < 5e-4  # the approximation's known worst case is ~2e-4


def test_gelu_gradient_is_smooth_through_zero():
    # no kink: the finite differences at 0 itself agree (slope 0.5 there)
    x = np.array([[0.0, 1e-3, -1e-3]])
    check_grad(act.forward, act.backward, act.GELUParams(), x)
    y, cache = act.forward(act.GELUParams(), x)
    np.testing.assert_allclose(act.backward(act.GELUParams(), cache, np.ones_like(y))[0][0, 0], 0.5)


def test_multiply_scales_by_its_factor():
    y, cache = act.forward(act.MultiplyParams(factor=0.25), np.array([[4.0, -8.0]]))
    np.testing.assert_array_equal(y, [[1.0, -2.0]])
    dx, _ = act.backward(act.MultiplyParams(factor=0.25), cache, np.ones_like(y))
    np.testing.assert_array_equal(dx, [[0.25, 0.25]])


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

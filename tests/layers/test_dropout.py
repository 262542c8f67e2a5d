import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import smooth_arrays

from fcnn import check_grad
from fcnn import random as fr
from fcnn.layers import dropout


def test_eval_mode_is_the_identity():
    params = dropout.DropoutParams(drop_rate=0.5)
    x = np.arange(6.0).reshape(2, 3)
    y, cache = dropout.forward(params, x, train=False)
    assert y is x
    assert dropout.backward(params, cache, x)[0] is x


def test_training_keeps_the_expectation_and_drops_the_rate():
    params = dropout.DropoutParams(drop_rate=0.3)
    x = np.ones((200, 500), np.float32)
    y, _ = dropout.forward(params, x, key=fr.key(0), train=True)
    assert y.dtype == np.float32
    assert abs(float(y.mean()) - 1.0) < 0.01
    assert abs(float((y == 0).mean()) - 0.3) < 0.01


def test_same_key_same_mask_different_key_different_mask():
    params = dropout.DropoutParams(drop_rate=0.5)
    x = np.ones((4, 50))
    a, _ = dropout.forward(params, x, key=fr.key(1), train=True)
    b, _ = dropout.forward(params, x, key=fr.key(1), train=True)
    c, _ = dropout.forward(params, x, key=fr.key(2), train=True)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@given(st.data(), st.floats(0.0, 0.9))
def test_backward_matches_finite_differences(data, rate):
    x = data.draw(smooth_arrays((3, 4)), label="x")
    params = dropout.DropoutParams(drop_rate=rate)
    check_grad(
        lambda p, v: dropout.forward(p, v, key=fr.key(5), train=True), dropout.backward, params, x
    )


def test_training_without_a_key_and_bad_rates_are_errors():
    with pytest.raises(ValueError, match="needs a key"):
        dropout.forward(dropout.DropoutParams(0.5), np.ones(3), train=True)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        dropout.init(fr.key(0), (3,), drop_rate=1.0)

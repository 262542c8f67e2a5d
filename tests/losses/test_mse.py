import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import smooth_arrays

from fcnn.gradcheck import numeric_vjp
from fcnn.losses import mse


@given(st.data())
def test_mse_value_and_gradient(data):
    shape = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4)))
    pred = data.draw(smooth_arrays(shape), label="pred")
    target = data.draw(smooth_arrays(shape), label="target")
    loss, cache = mse.forward(pred, target)
    np.testing.assert_allclose(loss, np.mean((pred - target) ** 2))
    numeric = numeric_vjp(lambda p: mse.forward(p, target)[0], pred, np.array(1.0))
    np.testing.assert_allclose(mse.backward(cache), numeric, rtol=1e-5, atol=1e-8)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="differs from target"):
        mse.forward(np.zeros(3), np.zeros(4))

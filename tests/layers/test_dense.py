import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import smooth_arrays

from fcnn import check_grad
from fcnn import random as fr
from fcnn.layers import dense


@given(st.data())
def test_backward_matches_finite_differences(data):
    n, d_in, d_out = (data.draw(st.integers(1, 4), label=k) for k in ("n", "in", "out"))
    params = dense.DenseParams(
        w=data.draw(smooth_arrays((d_out, d_in)), label="w"),
        b=data.draw(smooth_arrays((d_out,)), label="b"),
    )
    x = data.draw(smooth_arrays((n, d_in)), label="x")
    y, _ = dense.forward(params, x)
    np.testing.assert_allclose(y, x @ params.w.T + params.b)
    assert set(check_grad(dense.forward, dense.backward, params, x)) == {"x", "w", "b"}


def test_init_shape_and_glorot_scale():
    shape, params = dense.init(fr.key(0), (400,), out_features=120, w_init="glorot_uniform")
    assert shape == (120,) and params.w.shape == (120, 400) and params.w.dtype == np.float32
    assert np.abs(params.w).max() <= np.sqrt(6 / 520)


def test_bad_input_is_explained():
    _, params = dense.init(fr.key(0), (4,), out_features=2)
    with pytest.raises(ValueError, match=r"expects input \(N, 4\), got shape \(3, 5\)"):
        dense.forward(params, np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="Flatten"):
        dense.init(fr.key(0), (2, 2), out_features=3)

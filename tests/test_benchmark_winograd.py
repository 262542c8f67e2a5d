"""Both Winograd forwards that benchmarks.winograd measures compute the same convolution."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.winograd import DESIGNS
from fcnn.layers import conv


@pytest.mark.parametrize("design", sorted(DESIGNS))
@given(
    n=st.integers(1, 3),
    c_in=st.integers(1, 4),
    c_out=st.integers(1, 4),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    chunk=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_both_winograd_forwards_equal_the_im2col_convolution_in_float64(
    design, n, c_in, c_out, h, w, chunk, seed
):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, h, w))
    params = conv.Conv2DParams(
        w=rng.standard_normal((c_out, c_in, 3, 3)), b=rng.standard_normal(c_out), padding=(1, 1)
    )
    expected, _ = conv.forward(params, x)
    got = DESIGNS[design](params.w, params.b, x, chunk)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)

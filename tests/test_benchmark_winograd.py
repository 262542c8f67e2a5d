"""The Winograd forward that benchmarks.winograd measures computes the same convolution."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.winograd import winograd_forward
from fcnn.layers import conv


@given(
    n=st.integers(1, 3),
    c_in=st.integers(1, 4),
    c_out=st.integers(1, 4),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    chunk=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_winograd_forward_equals_the_im2col_convolution_in_float64(
    n, c_in, c_out, h, w, chunk, seed
):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, h, w))
    params = conv.Conv2DParams(
        w=rng.standard_normal((c_out, c_in, 3, 3)), b=rng.standard_normal(c_out), padding=(1, 1)
    )
    expected, _ = conv.forward(params, x)
    got = winograd_forward(params.w, params.b, x, chunk)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)

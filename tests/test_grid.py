"""The stride-1 grid layout (fcnn.grid) against the general im2col and col2im."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import conv_geometry, smooth_arrays

from fcnn.grid import (
    grid,
    grid_col2im,
    grid_gradient_patches,
    grid_im2col,
    grid_rows_to_nchw,
    grid_to_nchw,
    nchw_to_grid,
)
from fcnn.im2col import geometry, im2col


@st.composite
def stride_one_geometry(draw):
    shape, k, _, p, d = draw(conv_geometry())
    return shape, geometry(shape, k, 1, p, d)


@given(st.data())
def test_grid_col2im_is_adjoint_of_grid_im2col(data):
    shape, geo = data.draw(stride_one_geometry(), label="geometry")
    x = data.draw(smooth_arrays(shape), label="x")
    cols, g = grid_im2col(x, geo)
    c = data.draw(smooth_arrays(cols.shape), label="c")
    np.testing.assert_allclose(
        np.sum(cols * c), np.sum(x * grid_col2im(c, shape, geo, g)), rtol=1e-10, atol=1e-10
    )


def _input_gradient_case(data):
    """A stride-1 geometry, an output gradient dy (N, K, OH, OW), weights w (K, C, KH, KW),
    the grid, and the input gradient by col2im on the grid (the reference)."""
    shape, geo = data.draw(stride_one_geometry(), label="geometry")
    (kh, kw), (oh, ow) = geo.kernel, geo.out_hw
    k = data.draw(st.integers(1, 3), label="output channels")
    dy = data.draw(smooth_arrays((shape[0], k, oh, ow)), label="dy")
    w = data.draw(smooth_arrays((k, shape[1], kh, kw)), label="w")
    g = grid(shape, geo)
    want = grid_col2im(w.reshape(k, -1).T @ nchw_to_grid(dy, g), shape, geo, g)
    return shape, geo, dy, w, g, want


@given(st.data())
def test_gradient_patches_give_col2im_of_the_gradient_columns(data):
    shape, geo, dy, w, g, want = _input_gradient_case(data)
    (n, c), k, (kh, kw) = shape[:2], dy.shape[1], geo.kernel
    patches, g2 = grid_gradient_patches(dy, shape, geo)
    assert g2 == g and patches.shape == (k * kh * kw, n * shape[2] * g.pitch[1])
    wt = w.transpose(1, 0, 2, 3).reshape(c, -1)  # (C, K*KH*KW)
    got = grid_rows_to_nchw(wt @ patches, n, g, geo, shape[2:])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@given(st.data())
def test_grid_columns_at_valid_positions_are_the_im2col_columns(data):
    shape, geo = data.draw(stride_one_geometry(), label="geometry")
    x = data.draw(smooth_arrays(shape), label="x")
    cols, g = grid_im2col(x, geo)
    assert cols.shape == (cols.shape[0], g.out_size)
    valid = grid_to_nchw(cols, shape[0], g, geo.out_hw)  # (N, C*KH*KW, OH, OW)
    as_im2col = valid.transpose(1, 0, 2, 3).reshape(cols.shape[0], -1)
    np.testing.assert_array_equal(as_im2col, im2col(x, geo))
    back = nchw_to_grid(valid, g)  # valid positions round-trip, the rest become zeros
    np.testing.assert_array_equal(grid_to_nchw(back, shape[0], g, geo.out_hw), valid)
    assert np.count_nonzero(back) <= np.count_nonzero(valid)
    with pytest.raises(ValueError, match="stride 1"):
        grid(shape, geometry(shape, 1, 2))

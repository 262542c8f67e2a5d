import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import conv_geometry, smooth_arrays

from fcnn.im2col import (
    col2im,
    geometry,
    grid,
    grid_col2im,
    grid_gradient_patches,
    grid_im2col,
    grid_rows_to_nchw,
    grid_to_nchw,
    im2col,
    nchw_to_grid,
    nchw_to_slots,
    resolve_padding,
    slot_col2im,
    window_view,
)


def _windows_naive(x, geo):
    """Loop oracle: the patch matrix built one window at a time."""
    n, c, _h, _w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = geo
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.zeros((c * kh * kw, n * oh * ow), dtype=x.dtype)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                patch = xp[
                    b,
                    :,
                    i * sh : i * sh + dh * (kh - 1) + 1 : dh,
                    j * sw : j * sw + dw * (kw - 1) + 1 : dw,
                ]
                cols[:, (b * oh + i) * ow + j] = patch.reshape(-1)
    return cols


@given(st.data())
def test_im2col_matches_loop_oracle(data):
    shape, k, s, p, d = data.draw(conv_geometry(), label="geometry")
    x = data.draw(smooth_arrays(shape), label="x")
    geo = geometry(shape, k, s, p, d)
    np.testing.assert_array_equal(im2col(x, geo), _windows_naive(x, geo))


@given(st.data())
def test_col2im_is_adjoint_of_im2col(data):
    shape, k, s, p, d = data.draw(conv_geometry(), label="geometry")
    geo = geometry(shape, k, s, p, d)
    x = data.draw(smooth_arrays(shape), label="x")
    cols_shape = (shape[1] * k[0] * k[1], shape[0] * geo.out_hw[0] * geo.out_hw[1])
    c = data.draw(smooth_arrays(cols_shape), label="c")
    lhs = np.sum(im2col(x, geo) * c)
    rhs = np.sum(x * col2im(c, shape, geo))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-10)


@given(st.data())
def test_col2im_inverts_im2col_on_non_overlapping_windows(data):
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    oh, ow = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)), kh * oh, kw * ow)
    x = data.draw(smooth_arrays(shape))
    geo = geometry(shape, (kh, kw), (kh, kw))
    np.testing.assert_array_equal(col2im(im2col(x, geo), shape, geo), x)


@given(st.data())
def test_every_window_equals_the_plain_slice(data):
    shape, k, s, _, d = data.draw(conv_geometry(), label="geometry")
    geo = (
        geometry(shape, k, s, 0, d)
        if min(shape[2:]) >= max(d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
        else geometry(shape, 1, s)
    )
    x = data.draw(smooth_arrays(shape))
    view = window_view(x, geo)
    (kh, kw), (sh, sw), _, (dh, dw), (oh, ow) = geo
    i, j = data.draw(st.integers(0, oh - 1)), data.draw(st.integers(0, ow - 1))
    plain = x[
        :, :, i * sh : i * sh + dh * (kh - 1) + 1 : dh, j * sw : j * sw + dw * (kw - 1) + 1 : dw
    ]
    np.testing.assert_array_equal(view[:, :, :, :, i, j], plain)
    assert not view.flags.writeable


def test_im2col_preserves_dtype():
    x = np.ones((1, 2, 4, 4), dtype=np.float32)
    geo = geometry(x.shape, 3, padding=1)
    assert im2col(x, geo).dtype == np.float32
    assert col2im(im2col(x, geo), x.shape, geo).dtype == np.float32


def test_same_padding_keeps_size_and_rejects_even_kernels():
    assert resolve_padding("same", (3, 5), (1, 1)) == (1, 2)
    assert resolve_padding("same", (3, 3), (2, 2)) == (2, 2)
    assert resolve_padding("valid", (3, 3), (1, 1)) == (0, 0)
    with pytest.raises(ValueError, match="odd kernel"):
        resolve_padding("same", (2, 2), (1, 1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kernel": 5}, "larger than the padded input"),
        ({"kernel": 2, "stride": -1}, "stride must be positive"),
        ({"kernel": 2, "padding": -1}, "padding must be non-negative"),
        ({"kernel": 2, "padding": "full"}, "padding must be"),
        ({"kernel": (2, 2, 2)}, "kernel_size must be an int or a pair"),
    ],
)
def test_bad_geometry_names_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        geometry((1, 1, 3, 3), **kwargs)


def test_geometry_rejects_non_nchw():
    with pytest.raises(ValueError, match="NCHW"):
        geometry((3, 3), 1)


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
def test_col2im_at_the_slots_pitch_equals_col2im_on_the_grid(data):
    shape, geo, dy, w, g, want = _input_gradient_case(data)
    slots = nchw_to_slots(dy, g)
    assert slots.shape == (dy.shape[1], shape[0] * g.pitch[0] * g.pitch[1])
    assert np.count_nonzero(slots) == np.count_nonzero(dy)  # dy's values, zeros elsewhere
    got = slot_col2im(w.reshape(dy.shape[1], -1).T @ slots, shape, geo, g)
    assert got.shape == shape
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

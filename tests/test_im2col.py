import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import conv_geometry, smooth_arrays

from fcnn.im2col import col2im, geometry, im2col, resolve_padding, window_view


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

import numpy as np
import pytest
from helpers import assert_unchanged, snapshot
from hypothesis import given
from hypothesis import strategies as st
from strategies import conv_geometry, smooth_arrays

from fcnn import check_grad
from fcnn import random as fr
from fcnn.layers import conv


def _conv_naive(x, w, b, stride, padding, dilation):
    """Loop oracle for the forward pass."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    n, _c, h, wd = x.shape
    co, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, co, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[
                :,
                :,
                i * sh : i * sh + dh * (kh - 1) + 1 : dh,
                j * sw : j * sw + dw * (kw - 1) + 1 : dw,
            ]
            y[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return y


def _draw_conv(data):
    shape, k, s, p, d = data.draw(conv_geometry(max_side=6), label="geometry")
    c_out = data.draw(st.integers(1, 3), label="c_out")
    _, params = conv.init(
        fr.key(0),
        shape[1:],
        out_channels=c_out,
        kernel_size=k,
        stride=s,
        padding=p,
        dilation=d,
        dtype=np.float64,
    )
    params = conv.Conv2DParams(
        w=data.draw(smooth_arrays(params.w.shape), label="w"),
        b=data.draw(smooth_arrays(params.b.shape), label="b"),
        stride=s,
        padding=p,
        dilation=d,
    )
    x = data.draw(smooth_arrays(shape), label="x")
    return params, x


@given(st.data())
def test_forward_matches_loop_oracle(data):
    params, x = _draw_conv(data)
    y, _ = conv.forward(params, x)
    want = _conv_naive(x, params.w, params.b, params.stride, params.padding, params.dilation)
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-10)


@given(st.data())
def test_backward_matches_finite_differences(data):
    params, x = _draw_conv(data)
    errors = check_grad(conv.forward, conv.backward, params, x)
    assert set(errors) == {"x", "w", "b"}


@given(st.data())
def test_forward_and_backward_are_pure(data):
    params, x = _draw_conv(data)
    before = snapshot(params, x)
    y, cache = conv.forward(params, x)
    cache_before = snapshot(*cache)
    conv.backward(params, cache, np.ones_like(y))
    assert_unchanged(before, params, x)
    assert_unchanged(cache_before, *cache)


@given(st.data())
def test_chunks_of_one_image_give_the_whole_batch_results(data):
    params, x = _draw_conv(data)
    y, cache = conv.forward(params, x)
    dy = data.draw(smooth_arrays(y.shape), label="dy")
    dx, grads = conv.backward(params, cache, dy)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(conv, "CHUNK_BYTES", 1)  # every image its own chunk on the stride-1 path
        y1, cache1 = conv.forward(params, x)
        dx1, grads1 = conv.backward(params, cache1, dy)
        assert set(check_grad(conv.forward, conv.backward, params, x)) == {"x", "w", "b"}
    if params.stride == (1, 1):
        assert isinstance(cache1, conv.GridConvCache) and cache1.chunk == 1
    else:
        assert isinstance(cache1, conv.StridedConvCache)
    np.testing.assert_allclose(y1, y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx1, dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads1.w, grads.w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads1.b, grads.b, rtol=1e-12, atol=1e-12)


@given(st.data(), st.sampled_from(["patches", "grid"]))
def test_every_input_gradient_method_of_the_stride_one_path_agrees(data, method):
    params, x = _draw_conv(data)
    y, cache = conv.forward(params, x)
    dy = data.draw(smooth_arrays(y.shape), label="dy")
    dx, grads = conv.backward(params, cache, dy)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(conv, "dx_method", lambda c_in, c_out: method)
        dx1, grads1 = conv.backward(params, cache, dy)
        assert set(check_grad(conv.forward, conv.backward, params, x)) == {"x", "w", "b"}
    np.testing.assert_allclose(dx1, dx, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(grads1.w, grads.w)


def test_input_gradient_method_follows_the_channel_counts():
    assert conv.dx_method(32, 32) == conv.dx_method(64, 32) == conv.dx_method(6, 6) == "patches"
    assert conv.dx_method(6, 16) == conv.dx_method(16, 32) == "grid"
    assert conv.dx_method(32, 64) == conv.dx_method(64, 128) == "grid"


def test_init_predicts_forward_shape_for_same_padding():
    shape, params = conv.init(fr.key(1), (3, 9, 8), out_channels=4, kernel_size=3, padding="same")
    y, _ = conv.forward(params, np.zeros((2, 3, 9, 8), np.float32))
    assert shape == y.shape[1:] == (4, 9, 8)


def test_float32_agrees_with_float64_and_keeps_dtype():
    _, params = conv.init(fr.key(2), (2, 6, 6), out_channels=3, kernel_size=3, padding=1)
    x = fr.generator(fr.key(3)).standard_normal((2, 2, 6, 6)).astype(np.float32)
    y32, c32 = conv.forward(params, x)
    dx32, g32 = conv.backward(params, c32, np.ones_like(y32))
    p64 = conv.Conv2DParams(
        params.w.astype(np.float64),
        params.b.astype(np.float64),
        params.stride,
        params.padding,
        params.dilation,
    )
    y64, c64 = conv.forward(p64, x.astype(np.float64))
    dx64, _ = conv.backward(p64, c64, np.ones_like(y64))
    assert y32.dtype == dx32.dtype == g32.w.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-5)


def test_channel_mismatch_names_the_shapes():
    _, params = conv.init(fr.key(0), (3, 5, 5), out_channels=2, kernel_size=3)
    with pytest.raises(
        ValueError, match=r"expects 3 input channels, got input of shape \(1, 2, 5, 5\)"
    ):
        conv.forward(params, np.zeros((1, 2, 5, 5), np.float32))
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv.forward(params, np.zeros((1, 3, 2, 2), np.float32))

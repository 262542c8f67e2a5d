"""Winograd F(2×2, 3×3) and F(4×4, 3×3): the same convolution and gradients as the im2col
path, and the rule that picks them."""

import numpy as np
import pytest
from helpers import assert_unchanged, snapshot
from hypothesis import given
from hypothesis import strategies as st
from strategies import smooth_arrays

from fcnn import check_grad, winograd
from fcnn.im2col import geometry
from fcnn.layers import conv


@st.composite
def winograd_convs(draw):
    """float64 conv params (3×3, stride 1, padding 0..3 per axis: at 3 some windows hold only
    zeros) and an input of odd or even sides with at least one output."""
    padding = (draw(st.integers(0, 3), label="ph"), draw(st.integers(0, 3), label="pw"))
    sides = [draw(st.integers(max(1, 3 - 2 * p), 8), label="side") for p in padding]
    n = draw(st.integers(1, 3), label="batch")
    c_in = draw(st.integers(1, 4), label="c_in")
    c_out = draw(st.integers(1, 4), label="c_out")
    params = conv.Conv2DParams(
        w=draw(smooth_arrays((c_out, c_in, 3, 3)), label="w"),
        b=draw(smooth_arrays((c_out,)), label="b"),
        padding=padding,
    )
    return params, draw(smooth_arrays((n, c_in, *sides)), label="x")


VARIANTS = sorted(conv.WINOGRAD)


def _forward_by(method):
    """Winograd ``method`` as a layer forward, whatever the rule says of the shapes."""
    return lambda params, x: conv.forward_by(method, params, x)


@pytest.mark.parametrize("method", VARIANTS)
@given(winograd_convs(), st.data())
def test_forward_and_both_gradients_equal_the_im2col_path_in_float64(method, conv_and_x, data):
    params, x = conv_and_x
    want, want_cache = conv.forward_by("grid", params, x)
    got, cache = _forward_by(method)(params, x)
    assert isinstance(cache, conv.WinogradConvCache)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    dy = data.draw(smooth_arrays(want.shape), label="dy")
    dx_want, grads_want = conv.backward(params, want_cache, dy)
    dx, grads = conv.backward(params, cache, dy)
    np.testing.assert_allclose(dx, dx_want, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grads.w, grads_want.w, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grads.b, grads_want.b, rtol=1e-10, atol=1e-10)
    no_dx, grads_only = conv.backward(params, cache, dy, need_dx=False)
    assert no_dx is None
    np.testing.assert_array_equal(grads_only.w, grads.w)


@pytest.mark.parametrize("method", VARIANTS)
@given(winograd_convs())
def test_gradients_match_finite_differences(method, conv_and_x):
    params, x = conv_and_x
    errors = check_grad(_forward_by(method), conv.backward, params, x)
    assert set(errors) == {"x", "w", "b"}


@pytest.mark.parametrize("method", VARIANTS)
@given(winograd_convs())
def test_forward_and_backward_are_pure(method, conv_and_x):
    params, x = conv_and_x
    before = snapshot(params, x)
    y, cache = _forward_by(method)(params, x)
    cache_before = snapshot(*cache)
    conv.backward(params, cache, np.ones_like(y))
    assert_unchanged(before, params, x)
    assert_unchanged(cache_before, *cache)


CHUNKINGS = {
    "one-image": {"MIN_TILES": 1},  # every image its own chunk
    # chunks of 4 tiles' images cut to 2 tiles' images
    "cut-by-bytes": {"MIN_TILES": 4, "MIN_BATCH_TILES": 2, "CHUNK_BYTES": 1},
}


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("method", VARIANTS)
@given(winograd_convs(), st.data())
def test_chunks_give_the_whole_batch_results(method, chunking, conv_and_x, data):
    params, x = conv_and_x
    y, cache = _forward_by(method)(params, x)
    dy = data.draw(smooth_arrays(y.shape), label="dy")
    dx, grads = conv.backward(params, cache, dy)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in CHUNKINGS[chunking].items():
            mp.setattr(winograd, name, value)
        y1, cache1 = _forward_by(method)(params, x)
        dx1, grads1 = conv.backward(params, cache1, dy)
    np.testing.assert_allclose(y1, y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx1, dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads1.w, grads.w, rtol=1e-12, atol=1e-12)


def test_chunks_hold_min_tiles_or_half_as_many_when_their_data_is_large():
    def chunk_images(side, c_in, c_out, v):
        grid = winograd.tile_grid((side, side), (1, 1), v.m)
        return winograd._chunks(64, grid, v, c_in + c_out, 4)[0].stop

    # 32 -> 32 at 28x28, F4: 6 images of 49 tiles (294 tiles, 2.7 MB of float32) stay
    assert chunk_images(28, 32, 32, winograd.F4) == 6
    # 128 -> 128 at 24x24: 8 images of 36 tiles would hold 10.6 MB; 4 (144 tiles) remain
    assert chunk_images(24, 128, 128, winograd.F4) == 4
    # 128 -> 256 at 12x12: 9 tiles each, 29 images -> 15 (135 tiles, no fewer than 128)
    assert chunk_images(12, 128, 256, winograd.F4) == 15


@pytest.mark.parametrize("v", [winograd.F2, winograd.F4], ids=lambda v: v.name)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**16))
def test_kernel_gradient_is_the_adjoint_of_the_kernel_transform(v, c_in, c_out, seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c_out, c_in, 3, 3))
    du = rng.standard_normal((v.alpha**2, c_in, c_out))
    lhs = np.sum(winograd.kernel_transform(w, v) * du)
    rhs = np.sum(w * winograd.kernel_gradient(du, v))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


# Each value sums 576 (forward) to 180 (weight gradient) float32 products after the
# transforms; the rounding grows with the square root of the terms and with the transforms'
# constants: 0, ±1 and ±1/2 for F(2x2) (a few float32 epsilons, 1.2e-7, of the largest
# magnitude: 2e-6 leaves room), up to 8 and 1/24 for F(4x4) (measured 5e-6 to 9e-6:
# 3e-5). A wrong tile or sign is off by O(1).
FLOAT32_ERROR = {"winograd2": 2e-6, "winograd4": 3e-5}


@pytest.mark.parametrize("method", VARIANTS)
def test_float32_stays_float32_and_close_to_the_float64_result(method):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 64, 9, 10))
    params = conv.Conv2DParams(
        w=rng.standard_normal((128, 64, 3, 3)) / 24, b=rng.standard_normal(128), padding=(1, 1)
    )
    y64, cache64 = _forward_by(method)(params, x)
    p32 = conv.Conv2DParams(
        w=params.w.astype(np.float32), b=params.b.astype(np.float32), padding=(1, 1)
    )
    y32, cache32 = _forward_by(method)(p32, x.astype(np.float32))
    dy = rng.standard_normal(y64.shape)
    dx64, g64 = conv.backward(params, cache64, dy)
    dx32, g32 = conv.backward(p32, cache32, dy.astype(np.float32))
    assert y32.dtype == dx32.dtype == g32.w.dtype == np.float32
    for got, want in ((y32, y64), (dx32, dx64), (g32.w, g64.w)):
        assert np.abs(got - want).max() <= FLOAT32_ERROR[method] * np.abs(want).max()


def _geo(kernel=3, stride=1, padding=1, dilation=1, side=16):
    return geometry((1, 1, side, side), kernel, stride, padding, dilation)


@pytest.mark.parametrize(
    ("geo", "channels", "expected"),
    [
        (_geo(), (64, 64), "winograd4"),  # 16x16 outputs: whole 4x4 tiles
        (_geo(side=24), (128, 128), "winograd4"),
        (_geo(side=14), (64, 64), "winograd2"),  # 4x4 tiles would compute 16x16 for 14x14
        (_geo(side=15, padding=0), (128, 64), "winograd2"),  # 13x13: 16x16 again
        (_geo(padding=2), (128, 128), "winograd2"),  # 18x18 outputs
        (_geo(), (32, 32), "winograd4"),
        (_geo(), (16, 32), "grid"),  # too few channels: the transforms cost what they save
        (_geo(kernel=5, padding=2), (128, 128), "grid"),
        (_geo(dilation=2, padding=2), (128, 128), "grid"),
        (_geo(padding=3), (128, 128), "winograd4"),  # 20x20 outputs, windows of zeros at the rim
        (_geo(stride=2), (128, 128), "strided"),
    ],
)
def test_algorithm_is_chosen_by_the_shapes(geo, channels, expected):
    assert conv.algorithm(geo, *channels, 64) == expected
    assert winograd.variant(geo, *channels, 64) is conv.WINOGRAD.get(expected)


def test_a_batch_of_fewer_tiles_than_the_smallest_chunk_runs_im2col():
    geo = _geo(side=32)  # 8 x 8 tiles of 4 x 4 outputs per image
    assert winograd.MIN_BATCH_TILES == winograd.MIN_TILES // 2 == 128
    assert conv.algorithm(geo, 64, 64, 2) == "winograd4"  # 128 tiles
    assert conv.algorithm(geo, 64, 64, 1) == "grid"  # one photo of the shipped model's size
    small = _geo(side=8)  # 2 x 2 tiles: 32 images of the DermaScan net's last 64-px layer
    assert conv.algorithm(small, 128, 256, 32) == "winograd4"
    assert conv.algorithm(small, 128, 256, 31) == "grid"


def test_conv_forward_takes_the_winograd_path_where_the_rule_applies(monkeypatch):
    rng = np.random.default_rng(1)
    params = conv.Conv2DParams(
        w=rng.standard_normal((3, 2, 3, 3)), b=rng.standard_normal(3), padding=(1, 1)
    )
    x = rng.standard_normal((2, 2, 5, 6))
    y_grid, cache_grid = conv.forward(params, x)
    assert isinstance(cache_grid, conv.GridConvCache)
    monkeypatch.setattr(winograd, "MIN_CHANNEL_PRODUCT", 1)
    monkeypatch.setattr(winograd, "MIN_TILES", 1)
    monkeypatch.setattr(winograd, "MIN_BATCH_TILES", 1)
    y, cache = conv.forward(params, x)
    assert isinstance(cache, conv.WinogradConvCache) and cache.variant is winograd.F2
    np.testing.assert_allclose(y, y_grid, rtol=1e-12, atol=1e-12)
    assert set(check_grad(conv.forward, conv.backward, params, x)) == {"x", "w", "b"}


@pytest.mark.parametrize("method", VARIANTS)
@pytest.mark.parametrize("padding", [(1, 1), (0, 2)])
def test_planes_4_kib_apart_take_the_skewed_copies_and_give_the_same_results(method, padding):
    # 16 x 32 float64 planes are 4 KiB: the channel-last copies of x and dy, and the copy of
    # the output back to NCHW, go through the skewed buffer
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 16, 32))
    assert winograd._aliased(16, 32, x.dtype)
    params = conv.Conv2DParams(
        w=rng.standard_normal((4, 3, 3, 3)), b=rng.standard_normal(4), padding=padding
    )
    want, want_cache = conv.forward_by("grid", params, x)
    got, cache = _forward_by(method)(params, x)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    dy = rng.standard_normal(want.shape)
    (dx_want, g_want), (dx, g) = (
        conv.backward(params, want_cache, dy),
        conv.backward(params, cache, dy),
    )
    np.testing.assert_allclose(dx, dx_want, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(g.w, g_want.w, rtol=1e-10, atol=1e-10)


def test_an_unknown_algorithm_is_refused_with_the_known_ones():
    params = conv.Conv2DParams(w=np.zeros((1, 1, 3, 3)), b=np.zeros(1))
    with pytest.raises(ValueError, match="winograd4, winograd2, grid, strided"):
        conv.forward_by("fft", params, np.zeros((1, 1, 4, 4)))

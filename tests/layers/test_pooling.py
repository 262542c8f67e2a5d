import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import distinct_values, pool_geometry, smooth_arrays

from fcnn import check_grad
from fcnn import random as fr
from fcnn.layers import pooling

MAX, AVG = pooling.MaxPool2DParams, pooling.AvgPool2DParams


def _pool_naive(x, window, stride, padding, reduce):
    (kh, kw), (sh, sw), (ph, pw) = window, stride, padding
    fill = -np.inf if reduce is np.max else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    oh = (x.shape[2] + 2 * ph - kh) // sh + 1
    ow = (x.shape[3] + 2 * pw - kw) // sw + 1
    y = np.zeros((*x.shape[:2], oh, ow))
    for i in range(oh):
        for j in range(ow):
            y[:, :, i, j] = reduce(
                xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw], axis=(2, 3)
            )
    return y


def _params(kind, win, stride, pad, shape):
    return pooling.init(fr.key(0), shape[1:], kind=kind, window=win, stride=stride, padding=pad)[1]


@given(st.data())
def test_max_pool_forward_oracle_and_gradient(data):
    shape, win, stride, pad = data.draw(pool_geometry(), label="geometry")
    x = data.draw(distinct_values(shape), label="x")
    params = _params(MAX, win, stride, pad, shape)
    y, _ = pooling.forward(params, x)
    np.testing.assert_array_equal(y, _pool_naive(x, win, stride, pad, np.max))
    check_grad(pooling.forward, pooling.backward, params, x)


@given(st.data())
def test_avg_pool_forward_oracle_and_gradient(data):
    shape, win, stride, pad = data.draw(pool_geometry(), label="geometry")
    x = data.draw(smooth_arrays(shape), label="x")
    params = _params(AVG, win, stride, pad, shape)
    y, _ = pooling.forward(params, x)
    np.testing.assert_allclose(y, _pool_naive(x, win, stride, pad, np.mean), rtol=1e-12)
    check_grad(pooling.forward, pooling.backward, params, x)


@given(st.data())
def test_global_avg_pool_gradient(data):
    shape = tuple(data.draw(st.integers(1, 4), label=k) for k in "nchw")
    x = data.draw(smooth_arrays(shape), label="x")
    params = pooling.init(fr.key(0), shape[1:], kind=pooling.GlobalAvgPool2DParams)[1]
    y, _ = pooling.forward(params, x)
    np.testing.assert_allclose(y, x.mean(axis=(2, 3)))
    check_grad(pooling.forward, pooling.backward, params, x)


def test_max_pool_ties_send_the_gradient_to_the_first_maximum():
    x = np.array([[[[1.0, 3.0], [3.0, 3.0]]]])
    params = _params(MAX, 2, 2, 0, x.shape)
    y, cache = pooling.forward(params, x)
    dx, _ = pooling.backward(params, cache, np.ones_like(y))
    np.testing.assert_array_equal(dx, [[[[0.0, 1.0], [0.0, 0.0]]]])


def _max_pool_grad_naive(x, window, stride, padding, dy):
    """dx of max pooling by a loop: each window's dy goes to its first (row-major) maximum."""
    (kh, kw), (sh, sw), (ph, pw) = window, stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    dxp = np.zeros_like(xp)
    for n, c, i, j in np.ndindex(*dy.shape):
        win = xp[n, c, i * sh : i * sh + kh, j * sw : j * sw + kw]
        r, q = np.unravel_index(np.argmax(win), win.shape)  # argmax: the first maximum
        dxp[n, c, i * sh + r, j * sw + q] += dy[n, c, i, j]
    return dxp[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]]


@given(st.data())
def test_max_pool_with_many_ties_matches_the_loop_oracle(data):
    shape, win, stride, pad = data.draw(pool_geometry(), label="geometry")
    # after a ReLU many windows hold several equal maxima (zeros); values from {0, 1, 2}
    x = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(x)
    x = np.maximum(rng.integers(-2, 3, shape), 0).astype(np.float64)
    params = _params(MAX, win, stride, pad, shape)
    y, cache = pooling.forward(params, x)
    dy = rng.standard_normal(y.shape)
    dx, _ = pooling.backward(params, cache, dy)
    # equal up to the order in which overlapping windows add into a shared pixel
    np.testing.assert_allclose(dx, _max_pool_grad_naive(x, win, stride, pad, dy), atol=1e-12)


@pytest.mark.parametrize("chunk_bytes", [pooling.CHUNK_BYTES, 1], ids=["chunks", "one-image"])
@given(
    st.tuples(st.integers(1, 3), st.integers(1, 3)),
    st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 8), st.integers(1, 8)),
    st.integers(0, 2**32 - 1),
)
def test_tiled_max_pool_matches_the_loop_oracle(chunk_bytes, win, shape, seed):
    """stride = window, no padding: the row-then-column fast path, sides that the windows
    do not cover included, with many tied maxima; whole batches and one image per chunk."""
    assume(shape[2] >= win[0] and shape[3] >= win[1])
    rng = np.random.default_rng(seed)
    x = np.maximum(rng.integers(-2, 3, shape), 0).astype(np.float64)
    params = _params(MAX, win, win, 0, shape)
    dy = rng.standard_normal((*shape[:2], shape[2] // win[0], shape[3] // win[1]))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pooling, "CHUNK_BYTES", chunk_bytes)
        y, cache = pooling.forward(params, x)
        dx, _ = pooling.backward(params, cache, dy)
    assert isinstance(cache, pooling.TiledMaxCache)  # the tiled path
    np.testing.assert_array_equal(y, _pool_naive(x, win, win, (0, 0), np.max))
    np.testing.assert_array_equal(dx, _max_pool_grad_naive(x, win, win, (0, 0), dy))


def test_overlapping_max_pool_accumulates_shared_pixels():
    x = np.arange(9.0).reshape(1, 1, 3, 3)  # max of every 2x2 window at stride 1 shares pixel 8
    params = _params(MAX, 2, 1, 0, x.shape)
    y, cache = pooling.forward(params, x)
    dx, _ = pooling.backward(params, cache, np.ones_like(y))
    assert dx[0, 0, 2, 2] == 1.0 and dx[0, 0, 1, 1] == 1.0 and dx.sum() == 4.0


def test_init_predicts_forward_shape_and_preserves_dtype():
    windows = dict(window=3, stride=2, padding=1)
    for kind, static in ((MAX, windows), (AVG, windows), (pooling.GlobalAvgPool2DParams, {})):
        shape, params = pooling.init(fr.key(0), (3, 7, 6), kind=kind, **static)
        y, cache = pooling.forward(params, np.ones((2, 3, 7, 6), np.float32))
        dx, _ = pooling.backward(params, cache, np.ones_like(y))
        assert y.shape[1:] == shape and y.dtype == dx.dtype == np.float32


def test_bad_pooling_arguments():
    with pytest.raises(ValueError, match="at most half the window"):
        pooling.init(fr.key(0), (1, 4, 4), kind=MAX, window=2, padding=2)
    with pytest.raises(ValueError, match="larger than the padded input"):
        pooling.init(fr.key(0), (1, 2, 2), kind=MAX, window=3)
    with pytest.raises(ValueError, match="kind"):
        pooling.init(fr.key(0), (1, 2, 2), kind=dict, window=2)
    with pytest.raises(TypeError, match="window"):  # the global pool has no window
        pooling.init(fr.key(0), (1, 2, 2), kind=pooling.GlobalAvgPool2DParams, window=2)

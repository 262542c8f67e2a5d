"""Reusable hypothesis strategies: small arrays and valid window geometries, built
constructively (no ``assume``), kept tiny so shrinking works and the suite stays fast."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays


def smooth_arrays(shape, dtype=np.float64, low=-2.0, high=2.0):
    """Finite values in [low, high]."""
    return arrays(
        dtype,
        shape,
        elements=st.floats(
            low,
            high,
            allow_nan=False,
            allow_infinity=False,
            allow_subnormal=False,
            width=np.dtype(dtype).itemsize * 8,
        ),
    )


def away_from_zero(shape, margin=0.05, high=2.0):
    """Values with |v| in [margin, high]: no ReLU kink within finite-difference reach."""
    mags = arrays(np.float64, shape, elements=st.floats(margin, high))
    signs = arrays(np.float64, shape, elements=st.sampled_from([-1.0, 1.0]))
    return st.tuples(mags, signs).map(lambda ms: ms[0] * ms[1])


def distinct_values(shape, gap=0.05):
    """A shuffled grid of distinct values ``gap`` apart: no ties anywhere (for max pooling)."""
    size = int(np.prod(shape))
    return st.permutations(range(size)).map(
        lambda perm: (np.array(perm, dtype=np.float64) - size / 2).reshape(shape) * gap
    )


@st.composite
def conv_geometry(draw, max_side=7):
    """(input_shape NCHW, kernel, stride, padding, dilation) with at least one output position."""
    k = (draw(st.integers(1, 3), label="kh"), draw(st.integers(1, 3), label="kw"))
    d = (draw(st.integers(1, 2), label="dh"), draw(st.integers(1, 2), label="dw"))
    p = (draw(st.integers(0, 2), label="ph"), draw(st.integers(0, 2), label="pw"))
    s = (draw(st.integers(1, 2), label="sh"), draw(st.integers(1, 2), label="sw"))
    sides = []
    for kk, dd, pp in zip(k, d, p, strict=True):
        smallest = max(1, dd * (kk - 1) + 1 - 2 * pp)
        sides.append(draw(st.integers(smallest, max(smallest, max_side)), label="side"))
    n = draw(st.integers(1, 3), label="batch")
    c = draw(st.integers(1, 3), label="channels")
    return (n, c, sides[0], sides[1]), k, s, p, d


@st.composite
def pool_geometry(draw, max_side=7):
    """(input_shape, window, stride, padding) valid for pooling (padding <= window // 2)."""
    win = (draw(st.integers(1, 3), label="kh"), draw(st.integers(1, 3), label="kw"))
    stride = (draw(st.integers(1, 3), label="sh"), draw(st.integers(1, 3), label="sw"))
    pad = tuple(draw(st.integers(0, w // 2), label="pad") for w in win)
    sides = []
    for w, pp in zip(win, pad, strict=True):
        smallest = max(1, w - 2 * pp)
        sides.append(draw(st.integers(smallest, max(smallest, max_side)), label="side"))
    n = draw(st.integers(1, 2), label="batch")
    c = draw(st.integers(1, 3), label="channels")
    return (n, c, sides[0], sides[1]), win, stride, pad

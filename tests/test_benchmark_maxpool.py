"""benchmarks.maxpool: its recorded routing is max-pool's backward, ties included, so the
floor it reports is a floor for the same result."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.maxpool import recorded_backward, recorded_forward
from benchmarks.timing import interleaved_ms
from fcnn.layers import pooling


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 3),
    oh=st.integers(1, 4),
    ow=st.integers(1, 4),
    levels=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_recorded_routing_equals_the_layer_ties_included(n, c, oh, ow, levels, seed):
    rng = np.random.default_rng(seed)
    # few distinct values: most windows hold their maximum more than once
    x = rng.integers(0, levels, (n, c, 2 * oh, 2 * ow)).astype(np.float32)
    dy = rng.standard_normal((n, c, oh, ow)).astype(np.float32)
    params = pooling.MaxPool2DParams()
    y, cache = pooling.forward(params, x)
    y_recorded, mask = recorded_forward(x)
    np.testing.assert_array_equal(y_recorded, y)
    np.testing.assert_array_equal(
        recorded_backward(mask, dy), pooling.backward(params, cache, dy)[0]
    )


def test_each_window_routes_to_exactly_one_pixel():
    x = np.zeros((1, 1, 2, 2), np.float32)  # all four pixels tie
    _, mask = recorded_forward(x)
    dx = recorded_backward(mask, np.full((1, 1, 1, 1), 3.0, np.float32))
    np.testing.assert_array_equal(dx[0, 0], [[3.0, 0.0], [0.0, 0.0]])  # the first, row-major


def test_interleaved_times_are_per_run_medians_in_ms():
    ticks = iter(range(100))
    ms = interleaved_ms({"a": lambda: None, "b": lambda: None}, 3, clock=lambda: next(ticks))
    assert ms == pytest.approx({"a": 1000.0, "b": 1000.0})  # one tick per call, in ms

"""Weight averaging: the decay's warm-up, the average's formula, leaves that are not averaged,
and inputs left as they were."""

import numpy as np
import pytest
from helpers import assert_unchanged, snapshot
from hypothesis import given
from hypothesis import strategies as st

from fcnn.optim.averaging import ema_decay, ema_update


@given(decay=st.floats(0.0, 0.9999), step=st.integers(0, 10**6))
def test_decay_warms_up_to_its_value_and_never_exceeds_it(decay, step):
    d = ema_decay(decay, step)
    assert 0.0 <= d <= decay
    assert ema_decay(decay, step + 1) >= d  # it only grows
    if step >= 10 / (1 - decay):  # (1 + t) / (10 + t) >= decay from here on
        assert d == decay


def test_decay_by_hand_and_its_errors():
    assert ema_decay(0.999, 0) == pytest.approx(0.1)  # the first step keeps 90 % of the new
    assert ema_decay(0.999, 90) == pytest.approx(0.91)
    assert ema_decay(0.5, 1000) == 0.5
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\)"):
        ema_decay(1.0, 0)
    with pytest.raises(ValueError, match="step must be >= 0"):
        ema_decay(0.9, -1)


def test_update_mixes_float_leaves_and_keeps_the_newest_counters():
    average = {"w": np.full((2, 3), 1.0, np.float32), "n": np.array(3)}
    weights = {"w": np.full((2, 3), 3.0, np.float32), "n": np.array(4)}
    before = snapshot(average, weights)
    out = ema_update(average, weights, 0.75)
    assert_unchanged(before, average, weights)
    np.testing.assert_array_equal(out["w"], np.full((2, 3), 1.5, np.float32))
    assert out["w"].dtype == np.float32 and out["n"] == 4


def test_a_constant_sequence_is_its_own_average_and_steps_converge():
    rng = np.random.default_rng(0)
    target = rng.standard_normal(5)
    average = np.zeros(5)
    for t in range(400):
        average = ema_update(average, target, ema_decay(0.9, t))
    np.testing.assert_allclose(average, target, rtol=1e-12)
    # the average of weights circling a point lands nearer the point than the weights do
    noisy = [target + rng.standard_normal(5) for _ in range(2000)]
    average = noisy[0]
    for t, w in enumerate(noisy[1:]):
        average = ema_update(average, w, ema_decay(0.99, t))
    assert np.linalg.norm(average - target) < 0.5 * np.linalg.norm(noisy[-1] - target)


def test_lookahead_decay_is_airbenchs_cubic_ramp():
    from fcnn.optim.averaging import lookahead_decay

    assert lookahead_decay(0.95, 5, 0, 100) == 0.0  # the first mixes copy the fast weights
    assert lookahead_decay(0.95, 5, 50, 100) == pytest.approx(0.95**5 * 0.125)
    assert lookahead_decay(0.95, 5, 99, 100) < 0.95**5
    assert lookahead_decay(0.95, 5, 100, 100) == 1.0  # the end keeps the slow weights
    with pytest.raises(ValueError, match="base"):
        lookahead_decay(1.0, 5, 1, 10)


def test_lookahead_mixes_every_k_steps_and_at_the_last_and_waits_in_between():
    from fcnn.optim.averaging import lookahead

    slow, fast = {"w": np.zeros(2)}, {"w": np.ones(2)}
    weights, kept = lookahead(slow, fast, 3, 10, 5, 0.95)  # not a multiple of 5: no mix
    assert weights is fast and kept is slow
    weights, kept = lookahead(slow, fast, 5, 10, 5, 0.95)
    d = 0.95**5 * 0.5**3
    np.testing.assert_allclose(kept["w"], 1 - d)  # d·slow + (1 − d)·fast
    assert weights is kept  # the fast weights restart from the mix
    weights, kept = lookahead(slow, fast, 10, 10, 5, 0.95)  # the last step keeps the slow ones
    np.testing.assert_array_equal(kept["w"], 0.0)

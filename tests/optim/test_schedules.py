import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fcnn.optim import schedules as s


@given(st.integers(0, 10_000))
def test_schedules_match_their_formulas(step):
    assert s.constant(0.1)(step) == 0.1
    assert s.step_decay(0.1, 30, 0.5)(step) == pytest.approx(0.1 * 0.5 ** (step // 30))
    assert s.exponential(0.1, 0.9, 100)(step) == pytest.approx(0.1 * 0.9 ** (step / 100))
    t = min(step, 5000) / 5000
    want = 0.001 + 0.5 * (0.1 - 0.001) * (1 + math.cos(math.pi * t))
    assert s.cosine(0.1, 5000, 0.001)(step) == pytest.approx(want)


def test_warmup_ramps_linearly_then_follows_the_schedule():
    sched = s.warmup(s.step_decay(1.0, 10, 0.5), warmup_steps=4)
    assert [sched(i) for i in range(4)] == pytest.approx([0.0, 0.25, 0.5, 0.75])
    assert sched(4) == 1.0 and sched(14) == 0.5


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match="step_size must be positive"):
        s.step_decay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="lr must be positive"):
        s.cosine(0.0, 10)

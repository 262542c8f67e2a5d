"""Learning-rate schedules, checked by what a schedule must do rather than by restating its
formula: where it starts and ends, that it never rises, how its warm-up ramps."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fcnn.optim import schedules as s

lrs = st.floats(1e-5, 1.0)
gammas = st.floats(0.05, 0.99)
steps = st.integers(1, 2_000)


def _never_rises(schedule, upto: int) -> bool:
    values = [schedule(i) for i in range(upto)]
    return all(b <= a * (1 + 1e-12) for a, b in itertools.pairwise(values))


@given(lr=lrs)
def test_constant_is_its_rate_everywhere(lr):
    assert {s.constant(lr)(i) for i in (0, 1, 10**6)} == {lr}


@given(lr=lrs, step_size=steps, gamma=gammas)
def test_step_decay_holds_then_drops_by_gamma_at_each_boundary(lr, step_size, gamma):
    sched = s.step_decay(lr, step_size, gamma)
    assert sched(0) == lr and sched(step_size - 1) == lr
    assert sched(step_size) == pytest.approx(lr * gamma)
    assert sched(3 * step_size) == pytest.approx(sched(2 * step_size) * gamma)
    assert _never_rises(sched, min(4 * step_size, 3_000))


@given(lr=lrs, gamma=gammas, decay_steps=steps)
def test_exponential_starts_at_lr_and_loses_gamma_every_decay_steps(lr, gamma, decay_steps):
    sched = s.exponential(lr, gamma, decay_steps)
    assert sched(0) == lr
    assert sched(decay_steps) == pytest.approx(lr * gamma)
    assert sched(5 * decay_steps + 7) / sched(4 * decay_steps + 7) == pytest.approx(gamma)
    assert _never_rises(sched, min(3 * decay_steps, 3_000))


@given(lr=lrs, total=steps, final_fraction=st.floats(0.0, 0.9))
def test_cosine_runs_from_lr_down_to_final_and_stays(lr, total, final_fraction):
    final = lr * final_fraction
    sched = s.cosine(lr, total, final)
    assert sched(0) == pytest.approx(lr)
    assert sched(total) == pytest.approx(final) and sched(10 * total) == pytest.approx(final)
    assert sched(total / 2) == pytest.approx((lr + final) / 2)  # the half-way point
    assert _never_rises(sched, min(total + 5, 3_000))


@given(warm=st.integers(1, 300), start=st.floats(0.0, 0.9), lr=lrs)
def test_warmup_ramps_linearly_to_the_schedules_start_then_follows_it(warm, start, lr):
    base = s.step_decay(lr, 50, 0.5)
    sched = s.warmup(base, warm, start_factor=start)
    ramp = [sched(i) for i in range(warm)]
    assert ramp[0] == pytest.approx(start * lr)
    assert all(b >= a for a, b in itertools.pairwise(ramp))  # rises
    if warm > 2:  # equal steps: linear
        assert ramp[2] - ramp[1] == pytest.approx(ramp[1] - ramp[0], abs=1e-12)
    assert sched(warm) == lr and sched(warm + 50) == pytest.approx(base(50))


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match="step_size must be positive"):
        s.step_decay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="lr must be positive"):
        s.cosine(0.0, 10)
    with pytest.raises(ValueError, match="warmup_steps must be non-negative"):
        s.warmup(s.constant(0.1), -1)


def test_piecewise_linear_is_airbenchs_triangle():
    from fcnn.optim.schedules import piecewise_linear

    s = piecewise_linear(2.0, 100, [(0, 0.2), (0.2, 1.0), (1.0, 0.0)])
    assert s(0) == pytest.approx(0.4)
    assert s(10) == pytest.approx(1.2)  # halfway up: 0.2 + 0.8 / 2
    assert s(20) == pytest.approx(2.0)
    assert s(60) == pytest.approx(1.0)
    assert s(100) == 0.0 and s(150) == 0.0  # held at the last point
    bad_points = (
        [(0, 1)],  # one point
        [(0.1, 1), (1, 0)],  # not from 0
        [(0, 1), (0.5, 1), (0.5, 0), (1, 0)],  # not rising
        [(0, -1), (1, 0)],  # a negative factor
    )
    for bad in bad_points:
        with pytest.raises(ValueError, match="piecewise_linear"):
            piecewise_linear(1.0, 10, bad)

"""Ctrl-C or SIGTERM during a run becomes a flag that every replica agrees on."""

import os
import signal

import numpy as np
import pytest

from fcnn import distributed
from fcnn.training.interrupts import InterruptFlag


class _TwoReplicas:
    """Rank 0 of two; the other replica reports ``other`` interrupts in the sum."""

    size, rank = 2, 0

    def __init__(self, other: float = 0.0):
        self.other = other

    def sum(self, x: np.ndarray) -> np.ndarray:
        return x + self.other


@pytest.mark.parametrize("replicas", [_TwoReplicas(), distributed.SINGLE], ids=["two", "one"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_sets_the_flag_at_any_count_and_the_handlers_are_restored(replicas, sig):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    flag = InterruptFlag(replicas)
    with flag:
        assert not flag.agreed()
        os.kill(os.getpid(), sig)  # no KeyboardInterrupt, no exit: only the flag
        assert flag.raised and flag.agreed()
    assert {s: signal.getsignal(s) for s in before} == before


def test_every_replica_stops_when_another_one_was_interrupted():
    with InterruptFlag(_TwoReplicas(other=1.0)) as flag:
        assert not flag.raised and flag.agreed()

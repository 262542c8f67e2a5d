"""Ctrl-C during a data-parallel run becomes a flag that every replica agrees on."""

import os
import signal

import numpy as np

from fcnn import distributed
from fcnn.training.interrupts import InterruptFlag


class _TwoReplicas:
    """Rank 0 of two; the other replica reports ``other`` interrupts in the sum."""

    size, rank = 2, 0

    def __init__(self, other: float = 0.0):
        self.other = other

    def sum(self, x: np.ndarray) -> np.ndarray:
        return x + self.other


def test_with_several_replicas_sigint_sets_the_flag_and_the_handler_is_restored():
    before = signal.getsignal(signal.SIGINT)
    flag = InterruptFlag(_TwoReplicas())
    with flag:
        assert not flag.agreed()
        os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt: only the flag
        assert flag.raised and flag.agreed()
    assert signal.getsignal(signal.SIGINT) is before


def test_every_replica_stops_when_another_one_was_interrupted():
    with InterruptFlag(_TwoReplicas(other=1.0)) as flag:
        assert not flag.raised and flag.agreed()


def test_one_replica_keeps_the_default_handler():
    before = signal.getsignal(signal.SIGINT)
    with InterruptFlag(distributed.SINGLE) as flag:
        assert signal.getsignal(signal.SIGINT) is before and not flag.agreed()

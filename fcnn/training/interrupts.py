"""Ctrl-C during a data-parallel run: every replica stops after the same step.

With one replica, Ctrl-C raises ``KeyboardInterrupt`` where it lands, and the run saves
``last.npz``. With several, an exception in the middle of a collective would leave the other
replicas waiting in it forever; so while :class:`InterruptFlag` is entered, SIGINT only
raises a flag, and after every step :meth:`InterruptFlag.agreed` sums the flags of all
replicas (one tiny reduction), so that all of them stop after the same step.
"""

from __future__ import annotations

import signal
import threading
from types import TracebackType

import numpy as np

from fcnn import distributed

__all__ = ["InterruptFlag"]


class InterruptFlag:
    """A context manager that turns SIGINT into a flag when there are several replicas."""

    def __init__(self, replicas: distributed.Replicas):
        self.replicas = replicas
        self.raised = False
        self._previous = None

    def __enter__(self) -> InterruptFlag:
        self.raised = False
        # signals reach only the main thread; a run in another thread keeps the default
        if self.replicas.size > 1 and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._flag)
        return self

    def _flag(self, signum, frame) -> None:
        self.raised = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def agreed(self) -> bool:
        """True on every replica when any of them was interrupted."""
        if self.replicas.size == 1:
            return False
        return bool(self.replicas.sum(np.array([float(self.raised)]))[0] > 0)

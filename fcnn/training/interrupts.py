"""Ctrl-C and SIGTERM during a run: every replica stops after the same step, at any count.

An exception raised where a signal lands could fall in the middle of a collective (leaving
the other replicas waiting in it forever) or of validation (where nothing catches it). So
while :class:`InterruptFlag` is entered, SIGINT and SIGTERM only raise a flag, with one
replica or many; after every step (and every validation) :meth:`InterruptFlag.agreed` sums
the flags of all replicas (one tiny reduction; none with one replica), so that all of them
stop at the same point and the run saves ``last.npz`` and says how to resume.
"""

from __future__ import annotations

import signal
import threading
from types import TracebackType

import numpy as np

from fcnn import distributed

__all__ = ["SIGNALS", "InterruptFlag"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class InterruptFlag:
    """A context manager that turns SIGINT and SIGTERM into a flag."""

    def __init__(self, replicas: distributed.Replicas):
        self.replicas = replicas
        self.raised = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> InterruptFlag:
        self.raised = False
        # signals reach only the main thread; a run in another thread keeps the defaults
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._flag) for sig in SIGNALS}
        return self

    def _flag(self, signum, frame) -> None:
        self.raised = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]  # what signal.signal gave
        self._previous = {}

    def agreed(self) -> bool:
        """True on every replica when any of them was interrupted."""
        if self.replicas.size == 1:
            return self.raised
        return bool(self.replicas.sum(np.array([float(self.raised)]))[0] > 0)

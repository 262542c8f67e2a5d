"""Weight averaging: an exponential moving average (EMA) of a model's parameters and layer
state over the training steps, as pure functions (:func:`ema_decay`, :func:`ema_update`) of
the average and the newest weights; the training loop keeps the average beside the
optimizer state (it is not a gradient transformation: it never changes the updates).

After step ``t`` (counted from 0)::

    average_t = d_t · average_(t-1) + (1 − d_t) · weights_t
    d_t       = min(decay, (1 + t) / (10 + t))

The average starts at the initial weights; the warm-up of ``d_t`` (as in TensorFlow's
``ExponentialMovingAverage`` with ``num_updates``) lets it forget them within the first
few dozen steps instead of the ``1 / (1 − decay)`` steps a fixed decay would take. An
average of the last few hundred steps' weights sits nearer the middle of the minimum the
optimizer is circling than the last step's weights do, which is why it usually validates
better and is calibrated better (Polyak & Juditsky 1992; Izmailov et al. 2018).

Floating-point leaves are averaged in their own dtype; other leaves (counters) are taken
from the newest weights.

**Lookahead** (Zhang et al. 2019) uses the same mix every ``k`` steps and then *restarts* the
fast weights from the average: ``slow ← d·slow + (1 − d)·fast; fast ← slow``. airbench runs
it every 5 steps with ``d_t = base^k · (t / T)³`` (:func:`lookahead_decay`): no averaging at
first, then an ever longer memory, and at the end (``d = 1``) the slow weights are the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fcnn import tree

__all__ = ["ema_decay", "ema_update", "lookahead", "lookahead_decay"]


def ema_decay(decay: float, step: int) -> float:
    """``d_t`` above: ``decay`` once ``step`` is large, less in the first steps."""
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"decay must be in [0, 1), got {decay!r}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step!r}")
    return min(decay, (1.0 + step) / (10.0 + step))


def ema_update(average: Any, weights: Any, decay: float) -> Any:
    """A new tree: ``decay · average + (1 − decay) · weights`` leaf by leaf (the inputs are
    not modified); ``average`` and ``weights`` have the same structure."""

    def mix(avg: Any, new: Any) -> Any:
        new = np.asarray(new)
        if not np.issubdtype(new.dtype, np.floating):
            return new
        d = new.dtype.type(decay)
        return d * np.asarray(avg, dtype=new.dtype) + (new.dtype.type(1) - d) * new

    return tree.map(mix, average, weights)


def lookahead_decay(base: float, every: int, step: int, total_steps: int) -> float:
    """airbench's Lookahead decay after ``step`` of ``total_steps``: ``base**every`` times
    ``(step / total_steps)³``, so the mix starts as a copy of the fast weights and keeps
    more of the slow ones as training ends; 1 from the last step on."""
    if not 0.0 <= base < 1.0:
        raise ValueError(f"base must be in [0, 1), got {base!r}")
    if every < 1 or total_steps < 1:
        raise ValueError(f"every and total_steps must be >= 1, got {every} and {total_steps}")
    if step >= total_steps:
        return 1.0
    return base**every * (max(step, 0) / total_steps) ** 3


def lookahead(
    slow: Any, fast: Any, done: int, total_steps: int, every: int, base: float
) -> tuple[Any, Any]:
    """``(weights to go on from, slow weights)`` after ``done`` steps of ``total_steps``: every
    ``every`` steps, and at the last, ``fast`` is mixed into ``slow`` with
    :func:`lookahead_decay`'s decay and both continue from the mix; in between, the fast
    weights go on and ``slow`` waits."""
    if done % every and done < total_steps:
        return fast, slow
    mixed = ema_update(slow, fast, lookahead_decay(base, every, done, total_steps))
    return mixed, mixed

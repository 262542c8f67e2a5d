"""Learning-rate schedules: pure functions ``step -> learning rate`` (steps count from 0)."""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["Schedule", "constant", "cosine", "exponential", "step_decay", "warmup"]

Schedule = Callable[[int], float]
"""``schedule(step) -> learning rate``: a pure function of the step count."""


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")


def constant(lr: float) -> Schedule:
    """``lr`` at every step."""
    _positive("lr", lr)
    return lambda step: lr


def step_decay(lr: float, step_size: int, gamma: float) -> Schedule:
    """``lr · gamma ** (step // step_size)``."""
    _positive("lr", lr)
    _positive("step_size", step_size)
    return lambda step: lr * gamma ** (step // step_size)


def exponential(lr: float, gamma: float, decay_steps: int = 1) -> Schedule:
    """``lr · gamma ** (step / decay_steps)``: smooth decay by ``gamma`` every ``decay_steps``."""
    _positive("lr", lr)
    _positive("decay_steps", decay_steps)
    return lambda step: lr * gamma ** (step / decay_steps)


def cosine(lr: float, total_steps: int, final_lr: float = 0.0) -> Schedule:
    """Half a cosine from ``lr`` down to ``final_lr`` over ``total_steps``, then ``final_lr``."""
    _positive("lr", lr)
    _positive("total_steps", total_steps)

    def schedule(step: int) -> float:
        progress = min(step, total_steps) / total_steps
        return final_lr + 0.5 * (lr - final_lr) * (1.0 + math.cos(math.pi * progress))

    return schedule


def warmup(schedule: Schedule, warmup_steps: int, start_factor: float = 0.0) -> Schedule:
    """Linear warm-up from ``start_factor · schedule(0)`` to ``schedule(0)`` over
    ``warmup_steps``, then ``schedule(step − warmup_steps)``."""
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be non-negative, got {warmup_steps}")

    def warmed(step: int) -> float:
        if step < warmup_steps:
            frac = start_factor + (1.0 - start_factor) * step / warmup_steps
            return schedule(0) * frac
        return schedule(step - warmup_steps)

    return warmed

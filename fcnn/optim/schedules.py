"""Learning-rate schedules: pure functions ``step -> learning rate`` (steps count from 0)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

__all__ = [
    "Schedule",
    "constant",
    "cosine",
    "exponential",
    "piecewise_linear",
    "step_decay",
    "warmup",
]

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


def piecewise_linear(
    lr: float, total_steps: int, points: tuple[tuple[float, float], ...] | list
) -> Schedule:
    """``lr`` times a piecewise-linear factor of the training's progress ``step / total_steps``:
    ``points`` are ``(progress, factor)`` pairs with progress from 0 to 1, increasing, and the
    factor is interpolated between them (held at the ends). airbench's triangle is
    ``[(0, 0.2), (0.2, 1), (1, 0)]``: from 0.2·lr up to lr at a fifth of the steps, then
    linearly down to 0 at the last."""
    _positive("lr", lr)
    _positive("total_steps", total_steps)
    xs = [float(x) for x, _ in points]
    ys = [float(y) for _, y in points]
    rising = all(b > a for a, b in itertools.pairwise(xs))
    if len(xs) < 2 or xs[0] != 0.0 or xs[-1] != 1.0 or not rising:
        raise ValueError(
            "piecewise_linear points are (progress, factor) pairs whose progress rises from 0 "
            f"to 1, got {list(points)}"
        )
    if any(y < 0 or not math.isfinite(y) for y in ys):
        raise ValueError(f"piecewise_linear factors must be finite and >= 0, got {ys}")

    def schedule(step: int) -> float:
        progress = min(max(step / total_steps, 0.0), 1.0)
        for (x0, y0), (x1, y1) in itertools.pairwise(zip(xs, ys, strict=True)):
            if progress <= x1:
                return lr * (y0 + (y1 - y0) * (progress - x0) / (x1 - x0))
        return lr * ys[-1]

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

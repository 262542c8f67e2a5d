"""Gradient transformations: optimizers as pure state transforms (the optax design).

A :class:`GradientTransformation` is a pair of pure functions::

    init(params)                        -> state
    update(grads, state, params=None)   -> (updates, new_state)

``updates`` has the structure of ``grads``; :func:`apply_updates` *adds* them to
the params (so a descent step is a negative update). Each transform is written
for whole trees with :func:`fcnn.tree.map`, which raises ``TypeError`` showing both
structures when params and grads differ. :func:`chain` composes transforms left
to right; the named optimizers in :mod:`fcnn.optim.optimizers` are chains.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from fcnn import tree
from fcnn.optim.schedules import Schedule

__all__ = [
    "EmptyState",
    "GradientTransformation",
    "ScaleByAdamState",
    "ScaleByScheduleState",
    "TraceState",
    "add_decayed_weights",
    "apply_updates",
    "chain",
    "clip_by_global_norm",
    "freeze",
    "global_norm",
    "multi_transform",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "set_to_zero",
    "trace",
]


class GradientTransformation(NamedTuple):
    init: Callable[[Any], Any]
    update: Callable[..., tuple[Any, Any]]


class EmptyState(NamedTuple):
    """State of a transform that keeps none."""


class TraceState(NamedTuple):
    trace: Any  # momentum buffer, a tree like the params


class ScaleByAdamState(NamedTuple):
    count: Any  # number of updates so far (int)
    mu: Any  # first-moment estimate, a tree like the params
    nu: Any  # second-moment estimate


class ScaleByScheduleState(NamedTuple):
    count: Any  # number of updates so far (int)


def apply_updates(params: Any, updates: Any) -> Any:
    """``params + updates`` leaf-wise, in the params' dtypes (a new tree)."""
    return tree.map(lambda p, u: (p + u).astype(p.dtype, copy=False), params, updates)


def _require_params(params: Any, name: str) -> None:
    if params is None:
        raise ValueError(f"{name} needs the current params: call update(grads, state, params)")


def scale(factor: float) -> GradientTransformation:
    """Multiply every update by a constant ``factor``."""

    def update(grads, state, params=None):
        return tree.map(lambda g: g * g.dtype.type(factor), grads), state

    return GradientTransformation(lambda params: EmptyState(), update)


def scale_by_learning_rate(learning_rate: float | Schedule) -> GradientTransformation:
    """Multiply by ``-learning_rate`` (a number, or a schedule of the step count); ValueError
    for a negative or non-finite rate (a schedule's is checked at step 0), which would climb
    the loss instead of descending it."""
    schedule = learning_rate if callable(learning_rate) else (lambda step: learning_rate)
    first = float(schedule(0))
    if not np.isfinite(first) or first < 0:
        raise ValueError(f"the learning rate must be a non-negative number, got {first}")

    def init(params):
        return ScaleByScheduleState(count=0)

    def update(grads, state, params=None):
        lr = float(schedule(int(state.count)))
        return (
            tree.map(lambda g: g * g.dtype.type(-lr), grads),
            ScaleByScheduleState(count=int(state.count) + 1),
        )

    return GradientTransformation(init, update)


def trace(decay: float, nesterov: bool = False) -> GradientTransformation:
    """Momentum: ``t ← g + decay·t``; the update is ``t`` (or ``g + decay·t`` with Nesterov).

    This is PyTorch's SGD momentum (dampening 0), Nesterov variant included.
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"momentum must lie in [0, 1), got {decay}")

    def init(params):
        return TraceState(trace=tree.zeros_like(params))

    def update(grads, state, params=None):
        new_trace = tree.map(lambda g, t: g + t * t.dtype.type(decay), grads, state.trace)
        if nesterov:
            updates = tree.map(lambda g, t: g + t * t.dtype.type(decay), grads, new_trace)
        else:
            updates = new_trace
        return updates, TraceState(trace=new_trace)

    return GradientTransformation(init, update)


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> GradientTransformation:
    """Adam's direction ``m̂ / (sqrt(v̂) + eps)`` with bias-corrected moments."""
    for name, value in (("b1", b1), ("b2", b2)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"adam {name} must lie in [0, 1), got {value}")

    def init(params):
        return ScaleByAdamState(count=0, mu=tree.zeros_like(params), nu=tree.zeros_like(params))

    def update(grads, state, params=None):
        count = int(state.count) + 1
        mu = tree.map(lambda g, m: m * m.dtype.type(b1) + g * g.dtype.type(1 - b1), grads, state.mu)
        nu = tree.map(
            lambda g, v: v * v.dtype.type(b2) + (g * g) * g.dtype.type(1 - b2), grads, state.nu
        )
        c1, c2 = 1.0 - b1**count, 1.0 - b2**count
        updates = tree.map(
            lambda m, v: (
                (m / m.dtype.type(c1)) / (np.sqrt(v / v.dtype.type(c2)) + v.dtype.type(eps))
            ),
            mu,
            nu,
        )
        return updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)


def add_decayed_weights(weight_decay: float) -> GradientTransformation:
    """``update + weight_decay · params``: L2 before a direction, decoupled decay after it."""
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be non-negative, got {weight_decay}")

    def update(grads, state, params=None):
        _require_params(params, "add_decayed_weights")
        return tree.map(lambda g, p: g + p * p.dtype.type(weight_decay), grads, params), state

    return GradientTransformation(lambda params: EmptyState(), update)


def global_norm(updates: Any) -> float:
    """The L2 norm of all leaves taken together."""
    return float(np.sqrt(sum(float(np.sum(np.square(u))) for u in tree.leaves(updates))))


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Scale all updates by ``min(1, max_norm / global_norm)``."""
    if max_norm <= 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")

    def update(grads, state, params=None):
        norm = global_norm(grads)
        if norm <= max_norm:
            return grads, state
        factor = max_norm / norm
        return tree.map(lambda g: g * g.dtype.type(factor), grads), state

    return GradientTransformation(lambda params: EmptyState(), update)


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply ``transforms`` in order; the state is the tuple of their states."""

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(grads, state, params=None):
        if len(state) != len(transforms):
            raise TypeError(f"chain: expected a state of {len(transforms)} parts, got {len(state)}")
        new_state = []
        for t, s in zip(transforms, state, strict=True):
            grads, s = t.update(grads, s, params)
            new_state.append(s)
        return grads, tuple(new_state)

    return GradientTransformation(init, update)


def set_to_zero() -> GradientTransformation:
    """A zero update for every leaf: the leaves it is given never move."""

    def update(grads, state, params=None):
        return tree.map(np.zeros_like, grads), state

    return GradientTransformation(lambda params: EmptyState(), update)


def multi_transform(
    transforms: dict[str, GradientTransformation], labels: Any
) -> GradientTransformation:
    """Each leaf updated by the transform of its label, as optax's ``multi_transform``:
    ``labels`` is a tree like the params with a key of ``transforms`` at every leaf (see
    :func:`fcnn.optim.groups.labels`). Every transform sees, and keeps state for, only the
    list of its own leaves; the state is a dict of their states by label."""
    flags = tree.leaves(labels)
    unknown = sorted(set(flags) - set(transforms))
    if unknown:
        raise ValueError(
            f"multi_transform: labels {unknown} have no transform; {sorted(transforms)} do"
        )

    def own(t: Any, label: str) -> list[Any]:
        leaves = tree.leaves(t)
        if len(leaves) != len(flags):
            raise TypeError(
                f"multi_transform: the labels have {len(flags)} leaves, the tree {len(leaves)}"
            )
        return [leaf for leaf, f in zip(leaves, flags, strict=True) if f == label]

    def init(params):
        return {label: t.init(own(params, label)) for label, t in transforms.items()}

    def update(grads, state, params=None):
        moved, new_state = {}, {}
        for label, t in transforms.items():
            part_params = None if params is None else own(params, label)
            updates, new_state[label] = t.update(own(grads, label), state[label], part_params)
            moved[label] = iter(updates)
        leaves, treedef = tree.flatten(grads)
        return tree.unflatten(treedef, [next(moved[f]) for f in flags]), new_state

    return GradientTransformation(init, update)


def freeze(inner: GradientTransformation, frozen: Any) -> GradientTransformation:
    """``inner`` on the leaves where ``frozen`` (a tree of bools like the params) is False,
    and a zero update where it is True, so frozen leaves never move (weight decay included):
    :func:`multi_transform` with :func:`set_to_zero`. The state is ``inner``'s."""
    labels = tree.map(lambda f: "frozen" if f else "trained", frozen)
    both = multi_transform({"trained": inner, "frozen": set_to_zero()}, labels)

    def init(params):
        return both.init(params)["trained"]

    def update(grads, state, params=None):
        updates, new_state = both.update(grads, {"trained": state, "frozen": EmptyState()}, params)
        return updates, new_state["trained"]

    return GradientTransformation(init, update)

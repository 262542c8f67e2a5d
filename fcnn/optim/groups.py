"""Parameter groups: which optimizer settings each parameter leaf gets, chosen by its path.

A leaf's *path* is its place in the params tree, as :func:`fcnn.tree.flatten_with_paths`
names it (``"3.beta"``: the shift of the network's layer 3; ``"0.w"``: layer 0's weights).
:func:`labels` gives every leaf the name of the first group whose shell-style pattern
(:mod:`fnmatch`) matches its path, or ``default``; :func:`fcnn.optim.multi_transform` then
updates each group with its own transform, so per-group learning rates and weight decay are a
pure transform, not a special case in the training loop (the optax design). Patterns select
by kind too: ``"*.beta"`` is every BatchNorm shift, ``"*.b"`` every conv and dense bias.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

from fcnn import tree
from fcnn.optim.schedules import Schedule

__all__ = ["DEFAULT", "labels", "scaled", "until"]

DEFAULT = "default"


def labels(params: Any, patterns: Sequence[str]) -> Any:
    """A tree like ``params`` holding, at each leaf, ``"group<i>"`` for the first pattern
    ``i`` that matches the leaf's path, else :data:`DEFAULT`. ValueError for a pattern that
    matches no leaf (a typo would otherwise train everything by the default settings)."""
    paths = [path for path, _ in tree.flatten_with_paths(params)]
    unused = [p for p in patterns if not any(fnmatch.fnmatchcase(path, p) for path in paths)]
    if unused:
        shown = ", ".join(paths[:12]) + (", ..." if len(paths) > 12 else "")
        raise ValueError(
            f"parameter group pattern(s) {unused} match no parameter; the paths are: {shown} "
            "(fcnn summary lists them)"
        )

    def label(path: str) -> str:
        for i, pattern in enumerate(patterns):
            if fnmatch.fnmatchcase(path, pattern):
                return f"group{i}"
        return DEFAULT

    leaves, treedef = tree.flatten(params)
    return tree.unflatten(treedef, [label(path) for path in paths])


def scaled(schedule: Schedule, factor: float) -> Schedule:
    """``schedule`` times ``factor`` (a group's learning-rate multiplier)."""
    return lambda step: schedule(step) * factor


def until(schedule: Schedule, last_step: int) -> Schedule:
    """``schedule`` for the steps before ``last_step``, then 0: a group trained only at the
    start (airbench trains its whitening layer's bias for the first 3 epochs)."""
    return lambda step: schedule(step) if step < last_step else 0.0

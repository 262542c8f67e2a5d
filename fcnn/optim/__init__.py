"""Optimizers and learning-rate schedules as pure functions (see :mod:`fcnn.optim.transforms`)."""

from fcnn.optim import averaging, groups, schedules
from fcnn.optim.optimizers import adam, adamw, sgd
from fcnn.optim.transforms import (
    GradientTransformation,
    add_decayed_weights,
    apply_updates,
    chain,
    clip_by_global_norm,
    freeze,
    global_norm,
    multi_transform,
    scale,
    scale_by_adam,
    scale_by_learning_rate,
    set_to_zero,
    trace,
)

__all__ = [
    "GradientTransformation",
    "adam",
    "adamw",
    "add_decayed_weights",
    "apply_updates",
    "averaging",
    "chain",
    "clip_by_global_norm",
    "freeze",
    "global_norm",
    "groups",
    "multi_transform",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "schedules",
    "set_to_zero",
    "sgd",
    "trace",
]

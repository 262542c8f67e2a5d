"""``fcnn.save``: a network trained in a script, written as a checkpoint that every command
reads (``fcnn predict``, ``evaluate``, ``summary``, ``export``, ``serve``) and ``fcnn.load``
loads back::

    fcnn.save("my_net.npz", net, params, state, input_shape=(1, 28, 28),
              class_names=[str(d) for d in range(10)],
              normalization={"mean": [33.3], "std": [78.6]})

Everything is checked before anything is written: the params and state must be the
network's (paths and shapes), it must take ``input_shape`` and give one value per class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fcnn import checkpoint, tree
from fcnn import random as fr
from fcnn.data.transforms import Normalization
from fcnn.decision import AnswerRules
from fcnn.layers import Layer

__all__ = ["save"]


def _normalization(value: Normalization | Mapping[str, Any] | None, channels: int) -> dict:
    """The manifest's normalization: per-channel mean and std in the 0..255 pixel scale (none
    given: mean 0, std 1, so the network sees raw pixel values)."""
    if value is None:
        return Normalization((0.0,) * channels, (1.0,) * channels).to_dict()
    norm = value if isinstance(value, Normalization) else Normalization.from_dict(dict(value))
    if len(norm.mean) != channels or len(norm.std) != channels:
        raise ValueError(
            f"normalization gives {len(norm.mean)} means and {len(norm.std)} stds for images "
            f"of {channels} channels"
        )
    if not all(np.isfinite(norm.mean)) or not all(s > 0 and np.isfinite(s) for s in norm.std):
        raise ValueError("normalization: means must be finite and stds finite and positive")
    return norm.to_dict()


def save(
    path: str | Path,
    net: Layer,
    params: Any,
    state: Any = None,
    *,
    input_shape: Sequence[int],
    class_names: Sequence[str],
    normalization: Normalization | Mapping[str, Any] | None = None,
    answer_rules: AnswerRules | None = None,
    name: str = "custom",
    metrics: Mapping[str, float] | None = None,
) -> Path:
    """Write ``net`` with ``params`` and ``state`` (None for a network without state) to
    ``path`` (``.npz``, atomically) as a model for images of ``input_shape`` (C, H, W) and
    the classes ``class_names``; ``normalization`` is the per-channel ``mean`` and ``std``
    the network was trained with, in 0..255 pixels. Returns the path. ValueError says what
    does not fit, before anything is written."""
    shape = tuple(int(d) for d in input_shape)
    names = tuple(str(c) for c in class_names)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape is one image's (C, H, W), got {tuple(input_shape)}")
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"class_names must be distinct and not empty, got {list(names)}")
    out_shape, template_params, template_state = net.init(fr.key(0), shape)
    if tuple(out_shape) != (len(names),):
        raise ValueError(
            f"the network gives outputs of shape {tuple(out_shape)} for images of {shape}, "
            f"but there are {len(names)} class names"
        )
    if state is None:
        state = template_state
    # the same checks a load makes: every leaf at its path with its shape
    checkpoint.fill(template_params, dict(tree.flatten_with_paths(params)), "params")
    checkpoint.fill(template_state, dict(tree.flatten_with_paths(state)), "state")
    manifest = checkpoint.ModelManifest(
        architecture=net.spec,
        model=name,
        input_shape=shape,
        class_names=names,
        normalization=_normalization(normalization, shape[0]),
        answer_rules=answer_rules.to_dict() if answer_rules is not None else None,
        metrics=dict(metrics) if metrics else None,
        kind="saved",
    )
    return checkpoint.save(path, manifest, params=params, state=state)

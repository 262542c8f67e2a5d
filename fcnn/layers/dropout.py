"""Inverted dropout: in training, zero each value with probability ``drop_rate`` and
scale the survivors by ``1 / (1 - drop_rate)``, so the expectation is unchanged;
in eval mode, the identity. The mask comes from an explicit key."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import attrs
import numpy as np

from fcnn import random as fr
from fcnn.layers.base import Layer, composable, module_backward
from fcnn.tree import static_field

__all__ = ["Dropout", "DropoutCache", "DropoutParams", "backward", "forward", "init"]


def _check_rate(value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"Dropout drop_rate must lie in [0, 1), got {value}")


@attrs.frozen(eq=False)
class DropoutParams:
    """No trainable leaves; the static probability of dropping a value."""

    drop_rate: float = static_field(default=0.5, validator=lambda _p, _a, v: _check_rate(v))


class DropoutCache(NamedTuple):
    mask: np.ndarray | None  # scaled keep-mask, None when forward was the identity


def init(
    key: fr.Key, input_shape: tuple[int, ...], **static: float
) -> tuple[tuple[int, ...], DropoutParams]:
    """Returns ``(output_shape, params)``; ``static``: ``drop_rate``, in [0, 1)."""
    return tuple(input_shape), DropoutParams(**static)


def forward(
    params: DropoutParams, x: np.ndarray, *, key: fr.Key | None = None, train: bool = False
) -> tuple[np.ndarray, DropoutCache]:
    """Identity unless ``train``; in training ``key`` is required (same key, same mask)."""
    if not train or params.drop_rate == 0.0:
        return x, DropoutCache(None)
    if key is None:
        raise ValueError("Dropout in training needs a key: pass key=fcnn.random.split(...)[i]")
    keep = 1.0 - params.drop_rate
    mask = (fr.generator(key).random(x.shape, dtype=np.float32) < keep).astype(x.dtype)
    mask *= x.dtype.type(1.0 / keep)
    return x * mask, DropoutCache(mask)


def backward(
    params: DropoutParams, cache: DropoutCache, dy: np.ndarray
) -> tuple[np.ndarray, DropoutParams]:
    """``dx = dy * mask`` (or ``dy`` in eval mode)."""
    return (dy if cache.mask is None else dy * cache.mask), params


def _layer(init_fn: Callable[..., tuple[tuple[int, ...], DropoutParams]]) -> Layer:
    def init_layer(key, input_shape):
        out_shape, params = init_fn(key, tuple(input_shape))
        return out_shape, params, None

    def apply(params, x, *, state=None, train=False, key=None):
        y, cache = forward(params, x, key=key, train=train)
        return y, cache, state

    return Layer(spec={}, init=init_layer, apply=apply, backward=module_backward(backward))


Dropout = composable(
    "Dropout",
    init,
    _layer,
    params_class=DropoutParams,
    doc="Inverted dropout as a composable layer: needs a key in training, the identity in eval.",
)

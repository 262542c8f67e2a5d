"""Flatten every axis but the batch axis: (N, d1, d2, ...) -> (N, d1*d2*...)."""

from __future__ import annotations

import math
import sys
from typing import NamedTuple

import attrs
import numpy as np

from fcnn import random as fr
from fcnn.layers.base import composable_module

__all__ = ["Flatten", "FlattenCache", "FlattenParams", "backward", "forward", "init"]


@attrs.frozen(eq=False)
class FlattenParams:
    """No leaves."""


class FlattenCache(NamedTuple):
    input_shape: tuple[int, ...]


def init(key: fr.Key, input_shape: tuple[int, ...]) -> tuple[tuple[int], FlattenParams]:
    """``((prod(input_shape),), FlattenParams())``: no hyperparameters, no leaves."""
    return (math.prod(input_shape),), FlattenParams()


def forward(params: FlattenParams, x: np.ndarray) -> tuple[np.ndarray, FlattenCache]:
    """x (N, ...) as (N, features); the cache keeps the input's shape."""
    return x.reshape(x.shape[0], -1), FlattenCache(x.shape)  # (N, ...) -> (N, prod(...))


def backward(
    params: FlattenParams, cache: FlattenCache, dy: np.ndarray
) -> tuple[np.ndarray, FlattenParams]:
    """dy (N, features) back in the input's shape; the (leafless) params are their gradient."""
    return dy.reshape(cache.input_shape), params  # (N, prod(...)) -> (N, ...)


Flatten = composable_module(
    "Flatten",
    sys.modules[__name__],
    doc="(N, ...) -> (N, features) as a composable layer.",
)

"""A user's own layer, registered as docs/how-to/own-layer.md shows (the tests
import it as a plugin module)."""

import sys
from typing import NamedTuple

import attrs
import numpy as np

from fcnn import layers
from fcnn.layers.base import stateless


@attrs.frozen(eq=False)
class ScaleParams:
    s: np.ndarray  # (C,) one scale per channel


class ScaleCache(NamedTuple):
    x: np.ndarray


def init(key, input_shape):  # init_fn(key, input_shape) -> (output_shape, params)
    return input_shape, ScaleParams(np.full(input_shape[0], 1.5, np.float32))


def forward(params, x):  # x (N, C)
    return x * params.s, ScaleCache(x)


def backward(params, cache, dy):
    return dy * params.s, ScaleParams(s=(dy * cache.x).sum(axis=0))


@layers.register("Scale")
def Scale():  # noqa: N802 - layer constructors are named like classes
    return stateless({"type": "Scale"}, init, sys.modules[__name__])

"""Weight initializers: pure functions ``init(key, shape, fan_in, fan_out, dtype) -> array``.

``fan_in`` / ``fan_out`` are passed explicitly by the layer (for a conv weight
``(C_out, C_in, KH, KW)`` they are ``C_in*KH*KW`` and ``C_out*KH*KW``), so the
initializers never guess from a shape's layout.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fcnn import random as fr

__all__ = [
    "Initializer",
    "get",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "zeros",
]

Initializer = Callable[..., np.ndarray]
"""``init(key, shape, fan_in, fan_out, dtype) -> array``: a weight initializer."""


def he_normal(key, shape, fan_in: int, fan_out: int, dtype=np.float32) -> np.ndarray:
    """Normal with std ``sqrt(2 / fan_in)`` (He et al. 2015), for ReLU networks."""
    std = np.sqrt(2.0 / fan_in)
    return (fr.generator(key).standard_normal(shape) * std).astype(dtype)


def he_uniform(key, shape, fan_in: int, fan_out: int, dtype=np.float32) -> np.ndarray:
    """Uniform on ``±sqrt(6 / fan_in)``."""
    limit = np.sqrt(6.0 / fan_in)
    return fr.generator(key).uniform(-limit, limit, shape).astype(dtype)


def glorot_uniform(key, shape, fan_in: int, fan_out: int, dtype=np.float32) -> np.ndarray:
    """Uniform on ``±sqrt(6 / (fan_in + fan_out))`` (Glorot & Bengio 2010)."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return fr.generator(key).uniform(-limit, limit, shape).astype(dtype)


def glorot_normal(key, shape, fan_in: int, fan_out: int, dtype=np.float32) -> np.ndarray:
    """Normal with std ``sqrt(2 / (fan_in + fan_out))``."""
    std = np.sqrt(2.0 / (fan_in + fan_out))
    return (fr.generator(key).standard_normal(shape) * std).astype(dtype)


def zeros(key, shape, fan_in: int, fan_out: int, dtype=np.float32) -> np.ndarray:
    """All zeros (biases)."""
    return np.zeros(shape, dtype=dtype)


_BY_NAME: dict[str, Initializer] = {
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "zeros": zeros,
}


def get(name: str) -> Initializer:
    """The initializer called ``name``; ``ValueError`` listing the choices otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(
            f"unknown initializer {name!r}; choose one of {sorted(_BY_NAME)}"
        ) from None

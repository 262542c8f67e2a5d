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
    "dirac",
    "fan_in_uniform",
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


def fan_in_uniform(key, shape, fan_in: int, fan_out: int, dtype=np.float32) -> np.ndarray:
    """Uniform on ``±1 / sqrt(fan_in)``: PyTorch's default for ``Conv2d`` and ``Linear``
    weights (``kaiming_uniform_`` with ``a = sqrt(5)``)."""
    limit = 1.0 / np.sqrt(fan_in)
    return fr.generator(key).uniform(-limit, limit, shape).astype(dtype)


def dirac(key, shape, fan_in: int, fan_out: int, dtype=np.float32) -> np.ndarray:
    """A convolution that starts as the identity on its first channels: the first
    ``min(C_out, C_in)`` filters of ``(C_out, C_in, KH, KW)`` are a 1 at the kernel's centre
    of their own input channel and 0 elsewhere; the other filters are
    :func:`fan_in_uniform`. So a block of such convolutions starts close to passing its
    input on (airbench's initialization, PyTorch's ``dirac_`` on the first ``C_in``
    filters); needs an odd kernel (a centre)."""
    if len(shape) != 4 or shape[2] % 2 == 0 or shape[3] % 2 == 0:
        raise ValueError(f"dirac initializes convolutions with odd kernels, got shape {shape}")
    w = fan_in_uniform(key, shape, fan_in, fan_out, dtype)
    c_out, c_in, kh, kw = shape
    identity = min(c_out, c_in)
    w[:identity] = 0
    w[np.arange(identity), np.arange(identity), kh // 2, kw // 2] = 1
    return w


def zeros(key, shape, fan_in: int, fan_out: int, dtype=np.float32) -> np.ndarray:
    """All zeros (biases)."""
    return np.zeros(shape, dtype=dtype)


_BY_NAME: dict[str, Initializer] = {
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "fan_in_uniform": fan_in_uniform,
    "dirac": dirac,
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

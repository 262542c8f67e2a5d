"""Batch normalization over the channel axis (axis 1) of (N, C) or (N, C, H, W) input.

In training mode it normalizes with the batch's statistics and returns updated
running statistics; in eval mode it normalizes with the running statistics and
returns them unchanged. Running statistics are *state* (:class:`BatchNormState`),
never trainable params: the optimizer never sees them. As in PyTorch, the
running variance is updated with the unbiased batch variance and
``running = (1 - momentum) * running + momentum * batch``.

Backward in training mode (``m`` values per channel, ``x̂`` the normalized input)::

    dβ = Σ dy        dγ = Σ dy·x̂
    dx = γ / (m·σ) · (m·dy − dβ − x̂·dγ)
"""

from __future__ import annotations

from typing import NamedTuple

import attrs
import numpy as np

from fcnn import random as fr
from fcnn.tree import static_field

__all__ = ["BatchNormCache", "BatchNormParams", "BatchNormState", "backward", "forward", "init"]


@attrs.frozen(eq=False)
class BatchNormParams:
    """Trainable scale ``gamma`` and shift ``beta`` (C,); static momentum and eps."""

    gamma: np.ndarray
    beta: np.ndarray
    momentum: float = static_field(default=0.1)
    eps: float = static_field(default=1e-5)


@attrs.frozen(eq=False)
class BatchNormState:
    """Running ``mean`` and ``var`` (C,), carried outside the params."""

    mean: np.ndarray
    var: np.ndarray


class BatchNormCache(NamedTuple):
    x_hat: np.ndarray  # normalized input, same shape as x
    inv_std: np.ndarray  # (C,)
    train: bool


def init(
    key: fr.Key,
    input_shape: tuple[int, ...],
    *,
    momentum: float = 0.1,
    eps: float = 1e-5,
    dtype=np.float32,
) -> tuple[tuple[int, ...], BatchNormParams, BatchNormState]:
    """Returns ``(output_shape, params, state)`` for one example of shape (C,) or (C, H, W)."""
    if len(input_shape) not in (1, 3):
        raise ValueError(f"BatchNorm expects an input shape (C,) or (C, H, W), got {input_shape}")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"BatchNorm momentum must lie in [0, 1], got {momentum}")
    if eps <= 0:
        raise ValueError(f"BatchNorm eps must be positive, got {eps}")
    c = input_shape[0]
    params = BatchNormParams(
        gamma=np.ones(c, dtype=dtype), beta=np.zeros(c, dtype=dtype), momentum=momentum, eps=eps
    )
    state = BatchNormState(mean=np.zeros(c, dtype=dtype), var=np.ones(c, dtype=dtype))
    return tuple(input_shape), params, state


def _layout(x: np.ndarray) -> tuple[str, tuple[int, ...]]:
    """(einsum subscripts of x, broadcast shape of a per-channel vector) for 2 or 4 dims."""
    if x.ndim == 2:
        return "nc", (1, x.shape[1])
    if x.ndim == 4:
        return "nchw", (1, x.shape[1], 1, 1)
    raise ValueError(f"BatchNorm expects input of shape (N, C) or (N, C, H, W), got {x.shape}")


def _channel_sum(sub: str, a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Per-channel sum of ``a`` (or of ``a * b``) without a temporary: einsum reduces in place."""
    if b is None:
        return np.einsum(f"{sub}->c", a)
    return np.einsum(f"{sub},{sub}->c", a, b)


def forward(
    params: BatchNormParams, x: np.ndarray, *, state: BatchNormState, train: bool = False
) -> tuple[np.ndarray, BatchNormCache, BatchNormState]:
    """Normalize ``x``; returns ``(y, cache, new_state)``."""
    sub, bshape = _layout(x)
    if x.shape[1] != params.gamma.shape[0]:
        raise ValueError(f"BatchNorm has {params.gamma.shape[0]} channels, got input {x.shape}")
    dtype = x.dtype.type
    if train:
        m = x.size // x.shape[1]
        if m < 2:
            raise ValueError(
                f"BatchNorm in training needs more than one value per channel, got input {x.shape}"
            )
        mean = _channel_sum(sub, x) / dtype(m)
        x_hat = x - mean.reshape(bshape)  # centered for now; normalized in place below
        var = _channel_sum(sub, x_hat, x_hat) / dtype(m)
        inv_std = (1.0 / np.sqrt(var + dtype(params.eps))).astype(x.dtype)
        x_hat *= inv_std.reshape(bshape)
        mom = params.momentum
        new_state = BatchNormState(
            mean=((1 - mom) * state.mean + mom * mean).astype(state.mean.dtype),
            var=((1 - mom) * state.var + mom * var * (m / (m - 1))).astype(state.var.dtype),
        )
    else:
        inv_std = (1.0 / np.sqrt(state.var + params.eps)).astype(x.dtype)
        x_hat = x - state.mean.reshape(bshape).astype(x.dtype)
        x_hat *= inv_std.reshape(bshape)
        new_state = state
    y = x_hat * params.gamma.reshape(bshape).astype(x.dtype, copy=False)
    y += params.beta.reshape(bshape).astype(x.dtype, copy=False)
    return y, BatchNormCache(x_hat, inv_std, train), new_state


def backward(
    params: BatchNormParams, cache: BatchNormCache, dy: np.ndarray
) -> tuple[np.ndarray, BatchNormParams]:
    """Gradients w.r.t. the input, ``gamma`` and ``beta`` (for the mode forward ran in)."""
    sub, bshape = _layout(dy)
    dbeta = _channel_sum(sub, dy)
    dgamma = _channel_sum(sub, dy, cache.x_hat)
    scale = (params.gamma * cache.inv_std).astype(dy.dtype).reshape(bshape)
    if cache.train:
        m = dy.dtype.type(dy.size // dy.shape[1])
        # dx = γσ⁻¹ · (dy − dβ/m − x̂·dγ/m), in three in-place passes over one new array
        dx = cache.x_hat * (-dgamma / m).reshape(bshape)
        dx += dy
        dx -= (dbeta / m).reshape(bshape)
        dx *= scale
    else:
        dx = dy * scale
    return dx, attrs.evolve(params, gamma=dgamma, beta=dbeta)

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

Synchronized BatchNorm for data-parallel training: inside
``with cross_replica_sum(sum_fn):`` the training-mode statistics (Σx, Σ(x−μ)²,
the count m) and the backward sums (dβ, dγ) are summed over every replica by
``sum_fn`` before use, so N replicas holding the shards of one batch compute
exactly what one process computes on the whole batch. The parameter gradients
returned stay this replica's own share (the gradient reduction sums them).
Outside the block (the default) each replica normalizes with its own shard's
statistics, as PyTorch's DistributedDataParallel does without SyncBatchNorm.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import attrs
import numpy as np

from fcnn import random as fr
from fcnn.layers.base import Layer, composable, module_backward
from fcnn.tree import static_field

__all__ = [
    "BatchNormCache",
    "BatchNormParams",
    "BatchNormState",
    "EvalCache",
    "TrainCache",
    "backward",
    "batch_mean",
    "batch_variance",
    "cross_replica_sum",
    "flat",
    "forward",
    "gamma_of",
    "init",
    "replica_total",
    "running_statistics",
]

# The sum over replicas that synchronized BatchNorm applies (None: per-replica statistics).
_REPLICA_SUM: contextvars.ContextVar[Callable[[np.ndarray], np.ndarray] | None] = (
    contextvars.ContextVar("fcnn_batchnorm_replica_sum", default=None)
)


@contextlib.contextmanager
def cross_replica_sum(sum_fn: Callable[[np.ndarray], np.ndarray] | None) -> Iterator[None]:
    """Synchronize training-mode BatchNorm statistics with ``sum_fn`` (an element-wise
    sum over replicas) inside the block; ``None`` keeps per-replica statistics."""
    token = _REPLICA_SUM.set(sum_fn)
    try:
        yield
    finally:
        _REPLICA_SUM.reset(token)


def replica_total(x: np.ndarray) -> np.ndarray:
    """``x`` summed over the replicas (unchanged without synchronization)."""
    sum_fn = _REPLICA_SUM.get()
    return x if sum_fn is None else sum_fn(x)


def _check_momentum(value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"BatchNorm momentum must lie in [0, 1], got {value}")


def _check_eps(value: float) -> None:
    if value <= 0:
        raise ValueError(f"BatchNorm eps must be positive, got {value}")


def _check_gamma(params: BatchNormParams, _attribute: attrs.Attribute, value: Any) -> None:
    if (value is None) == params.scale:
        raise ValueError(
            "BatchNorm's gamma is None exactly when scale=False (no learned scale), got "
            f"scale={params.scale} and gamma={'None' if value is None else 'an array'}"
        )


@attrs.frozen(eq=False)
class BatchNormParams:
    """Trainable scale ``gamma`` and shift ``beta`` (C,); static momentum and eps.

    ``scale=False`` leaves the scale out (``gamma`` is None, an empty subtree: no gradient,
    no update, no weight decay), as airbench's BatchNorm, which a following layer's weights
    make redundant; the layer then normalizes and shifts only."""

    gamma: np.ndarray | None = attrs.field(validator=_check_gamma)
    beta: np.ndarray
    momentum: float = static_field(default=0.1, validator=lambda _p, _a, v: _check_momentum(v))
    eps: float = static_field(default=1e-5, validator=lambda _p, _a, v: _check_eps(v))
    scale: bool = static_field(default=True, converter=bool)


def gamma_of(params: BatchNormParams) -> np.ndarray:
    """The scale γ (C,): the learned one, or ones when the layer has none (``scale=False``)."""
    return np.ones_like(params.beta) if params.gamma is None else params.gamma


@attrs.frozen(eq=False)
class BatchNormState:
    """Running ``mean`` and ``var`` (C,), carried outside the params."""

    mean: np.ndarray
    var: np.ndarray


class TrainCache(NamedTuple):
    """Training mode: the batch's statistics. ``x̂ = centered · inv_std``."""

    centered: np.ndarray  # x - μ (centered once, for the variance)
    inv_std: np.ndarray  # (C,)
    count: float  # values per channel the statistics came from (all replicas')


class EvalCache(NamedTuple):
    """Eval mode: the running statistics. ``x̂ = (x - mean) · inv_std``."""

    x: np.ndarray
    mean: np.ndarray  # (C,) the running mean
    inv_std: np.ndarray  # (C,)


BatchNormCache = TrainCache | EvalCache


def init(
    key: fr.Key,
    input_shape: tuple[int, ...],
    *,
    dtype=np.float32,
    **static: Any,
) -> tuple[tuple[int, ...], BatchNormParams, BatchNormState]:
    """Returns ``(output_shape, params, state)`` for one example of shape (C,) or (C, H, W);
    ``static``: :class:`BatchNormParams`' ``momentum``, ``eps`` and ``scale``."""
    if len(input_shape) not in (1, 3):
        raise ValueError(f"BatchNorm expects an input shape (C,) or (C, H, W), got {input_shape}")
    c = input_shape[0]
    gamma = np.ones(c, dtype=dtype) if static.get("scale", True) else None
    params = BatchNormParams(gamma=gamma, beta=np.zeros(c, dtype=dtype), **static)
    state = BatchNormState(mean=np.zeros(c, dtype=dtype), var=np.ones(c, dtype=dtype))
    return tuple(input_shape), params, state


def _layout(x: np.ndarray) -> str:
    """The einsum subscripts of x, of 2 or 4 dims."""
    if x.ndim == 2:
        return "nc"
    if x.ndim == 4:
        return "nchw"
    raise ValueError(f"BatchNorm expects input of shape (N, C) or (N, C, H, W), got {x.shape}")


def flat(x: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """``x`` as rows of one example each, (N, C) or (N, C*H*W), and the map from a
    per-channel vector (C,) to the matching row. An element-wise operation between the two
    runs one long inner loop per example, where a (1, C, 1, 1) broadcast restarts NumPy's
    inner loop at every (example, channel) plane, which costs more than the work on planes
    of the presets' sizes (``python -m benchmarks.kernels`` measures both)."""
    if x.ndim == 2:
        return x, lambda v: v
    n, c, h, w = x.shape
    return x.reshape(n, c * h * w), lambda v: np.repeat(v, h * w)  # (N, C, H, W) -> (N, C*H*W)


def _channel_sum(sub: str, a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Per-channel sum of ``a`` (or of ``a * b``) without a temporary: einsum reduces in place."""
    if b is None:
        return np.einsum(f"{sub}->c", a)
    return np.einsum(f"{sub},{sub}->c", a, b)


def batch_mean(x: np.ndarray) -> tuple[np.ndarray, int]:
    """The per-channel mean of a training batch ``x`` (N, C) or (N, C, H, W), over every
    replica inside :func:`cross_replica_sum`, and the number ``m`` of values per channel it
    came from; ValueError when there is only one."""
    c, dtype = x.shape[1], x.dtype.type
    # (C + 1,): per-channel Σx and the count, summed over replicas in one reduction
    totals = replica_total(np.append(_channel_sum(_layout(x), x), dtype(x.size // c)))
    m = round(float(totals[-1]))
    if m < 2:
        raise ValueError(
            f"BatchNorm in training needs more than one value per channel, got input {x.shape}"
        )
    return (totals[:c] / dtype(m)).astype(x.dtype), m


def batch_variance(
    params: BatchNormParams, squares: np.ndarray, m: int
) -> tuple[np.ndarray, np.ndarray]:
    """The batch's (biased) variance and ``1/σ`` per channel from this replica's sums of
    squared deviations ``squares`` (C,), summed over every replica inside
    :func:`cross_replica_sum`; ``m`` values per channel."""
    dtype = squares.dtype.type
    var = (replica_total(squares) / dtype(m)).astype(squares.dtype)
    return var, (1.0 / np.sqrt(var + dtype(params.eps))).astype(squares.dtype)


def running_statistics(
    params: BatchNormParams, state: BatchNormState, mean: np.ndarray, var: np.ndarray, m: int
) -> BatchNormState:
    """The running statistics after a training batch of ``m`` values per channel with this
    ``mean`` and (biased) ``var``: ``(1 - momentum)·running + momentum·batch``, with the
    unbiased variance, as PyTorch updates them."""
    mom = params.momentum
    return BatchNormState(
        mean=((1 - mom) * state.mean + mom * mean).astype(state.mean.dtype),
        var=((1 - mom) * state.var + mom * var * (m / (m - 1))).astype(state.var.dtype),
    )


def forward(
    params: BatchNormParams, x: np.ndarray, *, state: BatchNormState, train: bool = False
) -> tuple[np.ndarray, BatchNormCache, BatchNormState]:
    """Normalize ``x``; returns ``(y, cache, new_state)``."""
    sub = _layout(x)
    gamma = gamma_of(params)
    if x.shape[1] != gamma.shape[0]:
        raise ValueError(f"BatchNorm has {gamma.shape[0]} channels, got input {x.shape}")
    if not train:
        inv_std = (1.0 / np.sqrt(state.var + params.eps)).astype(x.dtype)
        mean = state.mean.astype(x.dtype)
        scale = gamma.astype(x.dtype) * inv_std
        # y = (x - μ)·γσ⁻¹ + β in two passes: x·scale, then + (β - μ·scale)
        rows, per_value = flat(x)
        y = rows * per_value(scale)
        y += per_value(params.beta.astype(x.dtype) - mean * scale)
        return y.reshape(x.shape), EvalCache(x, mean, inv_std), state
    mean, m = batch_mean(x)
    rows, per_value = flat(x)
    centered = (rows - per_value(mean)).reshape(x.shape)
    var, inv_std = batch_variance(params, _channel_sum(sub, centered, centered), m)
    y = flat(centered)[0] * per_value(gamma.astype(x.dtype) * inv_std)  # x̂·γ
    y += per_value(params.beta.astype(x.dtype, copy=False))
    y = y.reshape(x.shape)
    new_state = running_statistics(params, state, mean, var, m)
    return y, TrainCache(centered, inv_std, float(m)), new_state


def backward(
    params: BatchNormParams, cache: BatchNormCache, dy: np.ndarray
) -> tuple[np.ndarray, BatchNormParams]:
    """Gradients w.r.t. the input, ``gamma`` and ``beta`` (for the mode forward ran in)."""
    sub = _layout(dy)
    inv_std = cache.inv_std
    dbeta = _channel_sum(sub, dy)
    # dγ = Σ dy·x̂ = σ⁻¹·(Σ dy·source − offset·Σ dy), without forming x̂
    if isinstance(cache, TrainCache):
        dgamma = _channel_sum(sub, dy, cache.centered)
    else:
        dgamma = _channel_sum(sub, dy, cache.x)
        dgamma -= cache.mean * dbeta
    dgamma *= inv_std
    rows, per_value = flat(dy)
    scale = per_value((gamma_of(params) * inv_std).astype(dy.dtype))
    if isinstance(cache, TrainCache):
        m = dy.dtype.type(cache.count or dy.size // dy.shape[1])
        c = dy.shape[1]
        # (2C,): dβ and dγ of the whole batch, summed over replicas in one reduction
        sums = replica_total(np.concatenate([dbeta, dgamma]))
        batch_dbeta, batch_dgamma = sums[:c], sums[c:]
        # dx = γσ⁻¹ · (dy − dβ/m − x̂·dγ/m), x̂·dγ/m = (x − μ)·σ⁻¹dγ/m; four passes, one new array
        dx = flat(cache.centered)[0] * per_value(-inv_std * batch_dgamma / m)
        dx += rows
        dx -= per_value(batch_dbeta / m)
        dx *= scale
    else:
        dx = rows * scale
    # without a learned scale, dγ is only a step towards dx: no gradient leaves the layer
    grads = attrs.evolve(params, gamma=dgamma if params.scale else None, beta=dbeta)
    return dx.reshape(dy.shape), grads


def _layer(type_name: str, ndim: int) -> Callable[[Callable[..., Any]], Layer]:
    """``make`` for :func:`~fcnn.layers.base.composable`: the layer of one input rank."""

    def make(init_fn: Callable[..., Any]) -> Layer:
        def init_layer(key, input_shape):
            if len(input_shape) != ndim:
                want = "(C,)" if ndim == 1 else "(C, H, W)"
                raise ValueError(
                    f"{type_name} expects an input shape {want}, got {tuple(input_shape)}"
                )
            return init_fn(key, tuple(input_shape))

        def apply(params, x, *, state=None, train=False, key=None):
            if state is None:
                raise ValueError(f"{type_name} needs its state (running statistics) from init")
            return forward(params, x, state=state, train=train)

        return Layer(spec={}, init=init_layer, apply=apply, backward=module_backward(backward))

    return make


BatchNorm2D = composable(
    "BatchNorm2D",
    init,
    _layer("BatchNorm2D", 3),
    params_class=BatchNormParams,
    doc="Batch normalization of (N, C, H, W) per channel, as a composable layer.",
)
BatchNorm1D = composable(
    "BatchNorm1D",
    init,
    _layer("BatchNorm1D", 1),
    params_class=BatchNormParams,
    doc="Batch normalization of (N, C) per feature, as a composable layer.",
)

"""BatchNorm2D then a tiled MaxPool2D as one step in training.

The fusion pass (:func:`fcnn.layers.fuse`) runs a ``BatchNorm2D`` whose output goes
straight into a ``MaxPool2D`` with tiled windows (stride = window, no padding; after
:func:`~fcnn.layers.fusion.run_order` has moved the ReLU between them past the pool)
through this module in training mode. The layers' params, state and the network's spec are
those of the two layers; only the work between them changes: the unfused layers pass over
full-size maps about three times as often (``python -m benchmarks.fused`` times both).
BatchNorm → ReLU, fused the same way, measured slower than the two layers at every preset
shape (it recomputes more per value than the memory it saves), so it is not.

In training, BatchNorm is a per-channel affine map ``y = s·(x − μ) + β`` with ``s = γ/σ``;
``m`` values per channel, ``x̂ = (x − μ)/σ``, and the batch's sums ``dβ = Σ g``,
``dγ = Σ g·x̂`` of the gradient ``g`` that reaches BatchNorm's output give

    dx = s·g − s·dβ/m − (s/σ)·dγ/m · (x − μ).

A monotone map commutes with the maximum, so the pooled output is
``|s|·max(z) + β`` with ``z = sign(γ)·(x − μ)``: the full-size normalized map is never
formed. The pooled gradient reaches ``x̂`` only where it is routed, so
``dγ = sign(γ)/σ · Σ dy·max(z)``, and ``s·g`` is ``route(s·dy)``, each window's gradient on
its first largest ``z`` (row-major), as :mod:`fcnn.layers.pooling` routes it. Forward reads
the input twice (the mean, then ``z`` with its squares and window maxima, chunk by chunk of
images while the chunk is in the CPU's caches) and writes ``z`` once; backward reads ``z``
and writes ``dx`` once. The values are those of the unfused layers up to the rounding of the
variance (summed chunk by chunk). Where two values of a window differ by less than the
output's rounding, the unfused pool may route the gradient to the first of two equal
outputs; this step routes it to the larger input. Both are gradients of the same output;
equal inputs (ties) go to the first in both.

With ``sync_batchnorm`` (:func:`~fcnn.layers.batchnorm.cross_replica_sum`) the statistics
and the backward sums are summed over replicas exactly as in :mod:`fcnn.layers.batchnorm`.
"""

from __future__ import annotations

from typing import NamedTuple

import attrs
import numpy as np

from fcnn.im2col import Geometry
from fcnn.layers import batchnorm, pooling
from fcnn.layers.batchnorm import BatchNormParams, BatchNormState
from fcnn.layers.pooling import MaxPool2DParams

__all__ = ["PAIRS", "BatchNormMaxPoolCache", "applies", "backward", "forward"]

# The spec types of the pairs the fusion pass hands to this module, in run order.
PAIRS = (("BatchNorm2D", "MaxPool2D"),)


class BatchNormMaxPoolCache(NamedTuple):
    """What backward needs of BatchNorm → MaxPool: ``z``, its window maxima, the statistics."""

    flipped: np.ndarray  # (N, C, H, W): z = sign(γ)·(x − μ)
    pooled: np.ndarray  # (N, C, OH, OW): the maximum of z in each window
    sign: np.ndarray  # (C,): sign(γ), +1 where γ = 0
    inv_std: np.ndarray  # (C,): 1/σ of the batch
    count: float  # values per channel the statistics came from (all replicas')
    geo: Geometry  # the pool's windows


def applies(first: object, second: object, x: np.ndarray, train: bool) -> bool:
    """Whether :func:`forward` computes this pair of layers (their params) on ``x``: training
    mode, NCHW input, a BatchNorm with no zero γ, then max pooling whose windows tile the
    input. (With γ = 0 a channel's BatchNorm output is constant, every window ties, and the
    layers send the gradient to each window's first element; pooling ``x`` instead, as the
    fused step does, would send it to ``x``'s maximum and change γ's gradient.)"""
    return (
        train
        and isinstance(first, BatchNormParams)
        and isinstance(second, MaxPool2DParams)
        and x.ndim == 4
        and x.shape[1] == batchnorm.gamma_of(first).shape[0]
        and bool(np.all(batchnorm.gamma_of(first) != 0))
        and pooling.is_tiled(pooling.pool_geometry(second, x.shape))
    )


def forward(
    bn: BatchNormParams, pool: MaxPool2DParams, x: np.ndarray, *, state: BatchNormState
) -> tuple[np.ndarray, BatchNormMaxPoolCache, BatchNormState]:
    """``maxpool(batchnorm(x))`` in training mode, where :func:`applies`: ``(y, cache, new
    BatchNorm state)`` for x (N, C, H, W) -> y (N, C, OH, OW)."""
    n, c = x.shape[:2]
    geo = pooling.pool_geometry(pool, x.shape)
    mean, m = batchnorm.batch_mean(x)
    sign = np.where(batchnorm.gamma_of(bn) < 0, -1, 1).astype(x.dtype)
    x_rows, per_value = batchnorm.flat(x)  # (N, C*H*W) and (C,) -> a row's C*H*W values
    flip, shift = per_value(sign), per_value(sign * mean)
    z = np.empty_like(x)
    z_rows = batchnorm.flat(z)[0]
    pooled = np.empty((n, c, *geo.out_hw), x.dtype)
    squares = np.zeros(c, x.dtype)
    for part in pooling.image_chunks(x.shape, x.itemsize):
        # sign·x − sign·μ is exactly sign·(x − μ): the flips are exact
        np.multiply(x_rows[part], flip, out=z_rows[part])
        z_rows[part] -= shift
        squares += np.einsum("nchw,nchw->c", z[part], z[part])
        pooling.tile_maxima(z[part], geo, pooled[part])
    var, inv_std = batchnorm.batch_variance(bn, squares, m)
    gamma = batchnorm.gamma_of(bn)
    y = pooled * (np.abs(gamma).astype(x.dtype) * inv_std)[:, None, None]  # |s|·max z
    y += bn.beta.astype(x.dtype, copy=False)[:, None, None]
    pooled.flags.writeable = False  # kept for backward: a cache never changes
    z.flags.writeable = False
    new_state = batchnorm.running_statistics(bn, state, mean, var, m)
    return y, BatchNormMaxPoolCache(z, pooled, sign, inv_std, float(m), geo), new_state


def backward(
    bn: BatchNormParams, pool: MaxPool2DParams, cache: BatchNormMaxPoolCache, dy: np.ndarray
) -> tuple[np.ndarray, tuple[BatchNormParams, MaxPool2DParams]]:
    """The input gradient and both layers' params gradients, ``(dx, (d_bn, pool))``, for the
    gradient ``dy`` (N, C, OH, OW) of the pool's output (the pool has no leaves)."""
    z, pooled, sign, inv_std = cache.flipped, cache.pooled, cache.sign, cache.inv_std
    n, c, h, w = z.shape
    dbeta = np.einsum("nchw->c", dy)
    dgamma = np.einsum("nchw,nchw->c", dy, pooled) * sign * inv_std  # Σ dy·x̂ where routed
    offset, slope = _input_gradient_terms(bn, dbeta, dgamma, inv_std, dy.dtype.type(cache.count))
    scale = (batchnorm.gamma_of(bn) * inv_std).astype(dy.dtype)
    routed = dy * scale[:, None, None]  # s·dy: what each window passes to its maximum
    z_rows, per_value = batchnorm.flat(z)  # (N, C*H*W) and (C,) -> a row's C*H*W values
    offset_v = per_value(offset)
    slope_v = per_value(slope * sign)  # x − μ = sign·z
    (kh, kw), (oh, ow) = cache.geo.kernel, cache.geo.out_hw
    covered = h == oh * kh and w == ow * kw  # the windows write every pixel of dx
    dx = (np.empty if covered else np.zeros)(z.shape, dtype=dy.dtype)
    dx_rows = batchnorm.flat(dx)[0]
    parts = pooling.image_chunks(z.shape, z.itemsize)
    term = np.empty((parts[0].stop - parts[0].start, c * h * w), dy.dtype)
    for part in parts:
        pooling.route_to_first_maxima(z[part], pooled[part], routed[part], cache.geo, dx[part])
        t = term[: part.stop - part.start]
        np.multiply(z_rows[part], slope_v, out=t)
        t += offset_v
        dx_rows[part] += t
    return dx, (attrs.evolve(bn, gamma=dgamma if bn.scale else None, beta=dbeta), pool)


# -------------------------------------------------- BatchNorm's statistics and gradient terms


def _input_gradient_terms(
    bn: BatchNormParams, dbeta: np.ndarray, dgamma: np.ndarray, inv_std: np.ndarray, m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, ``offset = −s·dβ/m`` and ``slope = −(s/σ)·dγ/m`` of
    ``dx = s·g + offset + slope·(x − μ)``, from this replica's ``dβ`` and ``dγ`` summed over
    the replicas."""
    c = dbeta.shape[0]
    # (2C,): dβ and dγ of the whole batch, summed over replicas in one reduction
    sums = batchnorm.replica_total(np.concatenate([dbeta, dgamma]))
    scale = batchnorm.gamma_of(bn).astype(dbeta.dtype) * inv_std
    return -scale * sums[:c] / m, -scale * inv_std * sums[c:] / m

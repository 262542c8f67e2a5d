"""Fully connected layer: ``y = x @ w.T + b`` with ``w`` of shape ``(out, in)`` (as PyTorch)."""

from __future__ import annotations

import sys
from typing import NamedTuple

import attrs
import numpy as np

from fcnn import initializers
from fcnn import random as fr
from fcnn.layers.base import composable_module

__all__ = ["Dense", "DenseCache", "DenseParams", "backward", "forward", "init"]


@attrs.frozen(eq=False)
class DenseParams:
    """Trainable ``w`` (out_features, in_features) and ``b`` (out_features,)."""

    w: np.ndarray
    b: np.ndarray


class DenseCache(NamedTuple):
    x: np.ndarray  # (N, in_features)


def init(
    key: fr.Key,
    input_shape: tuple[int],
    *,
    out_features: int,
    w_init: str = "he_normal",
    dtype=np.float32,
) -> tuple[tuple[int], DenseParams]:
    """Initialize for one example of shape ``(in_features,)``; returns ``(out_shape, params)``."""
    if len(input_shape) != 1:
        raise ValueError(
            f"Dense expects a flat input shape (features,), got {tuple(input_shape)}; "
            "put a Flatten layer before it"
        )
    if out_features < 1:
        raise ValueError(f"Dense out_features must be positive, got {out_features}")
    in_features = input_shape[0]
    w = initializers.get(w_init)(key, (out_features, in_features), in_features, out_features, dtype)
    return (out_features,), DenseParams(w=w, b=np.zeros(out_features, dtype=dtype))


def forward(params: DenseParams, x: np.ndarray) -> tuple[np.ndarray, DenseCache]:
    """x (N, in) -> y (N, out)."""
    if x.ndim != 2 or x.shape[1] != params.w.shape[1]:
        raise ValueError(
            f"Dense weight {params.w.shape} expects input (N, {params.w.shape[1]}), "
            f"got shape {x.shape}"
        )
    return x @ params.w.T + params.b, DenseCache(x)


def backward(
    params: DenseParams, cache: DenseCache, dy: np.ndarray, *, need_dx: bool = True
) -> tuple[np.ndarray | None, DenseParams]:
    """Gradients of ``sum(y * dy)`` w.r.t. the input (unless ``need_dx=False``), ``w``, ``b``."""
    dx = dy @ params.w if need_dx else None  # (N, out) @ (out, in) -> (N, in)
    dw = dy.T @ cache.x  # (out, N) @ (N, in) -> (out, in)
    return dx, DenseParams(w=dw, b=dy.sum(axis=0))


Dense = composable_module(
    "Dense",
    sys.modules[__name__],
    doc="Fully connected layer as a composable layer.",
)

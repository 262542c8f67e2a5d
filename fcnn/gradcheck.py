"""Finite-difference checks of hand-written backward passes.

:func:`check_grad` compares a layer's ``backward`` with central differences of
its ``forward``, as a vector-Jacobian product: for a random upstream gradient
``dy`` and every element ``e`` of the input and of each param leaf::

    numeric_e = sum((f(θ + h·e) − f(θ − h·e)) · dy) / (2h)

Everything is cast to float64 first: in float32 the difference quotient's own
error (~1e-3) would hide real bugs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fcnn import random as fr
from fcnn import tree

__all__ = ["GradientCheckError", "check_grad", "numeric_vjp"]


class GradientCheckError(AssertionError):
    """Raised by :func:`check_grad` when an analytic gradient disagrees with the numeric one."""


def numeric_vjp(
    fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dy: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """Central-difference estimate of ``d sum(fn(x) * dy) / dx`` (same shape as ``x``)."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)  # views into x and grad
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = np.sum(fn(x) * dy)
        flat[i] = old - eps
        minus = np.sum(fn(x) * dy)
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return grad


def _compare(name: str, analytic: Any, numeric: np.ndarray, atol: float, rtol: float) -> float:
    analytic = np.asarray(analytic, dtype=np.float64)
    if analytic.shape != numeric.shape:
        raise GradientCheckError(
            f"gradient of {name}: backward returned shape {analytic.shape}, "
            f"expected {numeric.shape}"
        )
    err = np.abs(analytic - numeric)
    bad = err > atol + rtol * np.abs(numeric)
    if np.any(bad):
        idx = np.unravel_index(np.argmax(np.where(bad, err, -1)), err.shape)
        raise GradientCheckError(
            f"gradient of {name} is wrong at index {tuple(int(i) for i in idx)}: "
            f"backward gives {analytic[idx]:.8g}, finite differences give {numeric[idx]:.8g} "
            f"({int(bad.sum())} of {bad.size} elements outside atol={atol}, rtol={rtol})"
        )
    return float(err.max(initial=0.0))


def check_grad(
    forward: Callable[[Any, np.ndarray], tuple[np.ndarray, Any]],
    backward: Callable[[Any, Any, np.ndarray], tuple[np.ndarray, Any]],
    params: Any,
    x: np.ndarray,
    *,
    key: fr.Key | None = None,
    eps: float = 1e-6,
    atol: float = 1e-4,
    rtol: float = 1e-4,
    check_input: bool = True,
) -> dict[str, float]:
    """Check ``backward`` against finite differences of ``forward``, for ``x`` and every param leaf.

    ``forward(params, x) -> (y, cache)`` and ``backward(params, cache, dy) -> (dx, grads)``
    follow the layer contract; wrap a layer that needs keywords in a lambda, e.g.
    ``lambda p, x: bn.forward(p, x, state=s, train=True)[:2]``. Params and ``x`` are
    cast to float64. Returns the largest absolute error per checked name (``"x"`` and
    each param path); raises :class:`GradientCheckError` naming the first leaf that
    disagrees. Forward must be deterministic (pass Dropout a fixed key).
    """
    params64 = tree.astype(params, np.float64)
    x64 = np.asarray(x, dtype=np.float64)
    y, cache = forward(params64, x64)
    dy = fr.generator(fr.key(0) if key is None else key).standard_normal(np.shape(y))
    dx, grads = backward(params64, cache, dy)
    errors: dict[str, float] = {}
    if check_input:
        num_dx = numeric_vjp(lambda v: forward(params64, v)[0], x64, dy, eps)
        errors["x"] = _compare("x", dx, num_dx, atol, rtol)
    leaves, treedef = tree.flatten(params64)
    paths = [p for p, _ in tree.flatten_with_paths(params64)]
    grad_leaves = tree.leaves(grads)
    if len(grad_leaves) != len(leaves):
        raise GradientCheckError(
            f"backward returned grads with {len(grad_leaves)} leaves for params "
            f"with {len(leaves)}: "
            f"{tree.structure_repr(grads)} vs {tree.structure_repr(params64)}"
        )
    for i, (path, leaf) in enumerate(zip(paths, leaves, strict=True)):

        def with_leaf(v: np.ndarray, i: int = i) -> np.ndarray:
            swapped = list(leaves)
            swapped[i] = v
            return forward(tree.unflatten(treedef, swapped), x64)[0]

        num = numeric_vjp(with_leaf, np.asarray(leaf), dy, eps)
        errors[path] = _compare(f"param {path!r}", grad_leaves[i], num, atol, rtol)
    return errors

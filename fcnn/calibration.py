"""Post-hoc calibration of a classifier's logits, fitted on the validation split.

- ``temperature``: ``z / T`` with one ``T > 0`` (Guo et al. 2017); keeps the argmax.
- ``bias``: ``z / T + b`` with one temperature and a bias per class: corrects the prior
  shift that class weighting or balanced sampling leaves behind (a shift of the log-odds,
  which is what a bias undoes), with K + 1 parameters.
- ``vector``: ``z · w + b`` with a scale and a bias per class (2K parameters); the most
  flexible, so the most prone to fit the validation split's noise.
  Both ``bias`` and ``vector`` can change the argmax.

Both minimize the validation negative log-likelihood; the fitted parameters are stored
in the checkpoint's manifest and applied at inference.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

from fcnn import optim
from fcnn.layers.activations import softmax
from fcnn.losses import cross_entropy

__all__ = ["METHODS", "Calibration", "fit", "nll"]


@attrs.frozen
class Calibration:
    """How a model's logits become calibrated probabilities (Guo et al. 2017): ``method``
    "none", "temperature" (logits / T), "bias" or "vector" (a scale and an offset per class);
    fitted on validation logits by :func:`fit`, stored in checkpoints by :meth:`to_dict`."""

    method: str = "none"  # none | temperature | bias | vector
    temperature: float = 1.0
    scale: tuple[float, ...] = ()  # vector scaling: one factor per class
    bias: tuple[float, ...] = ()  # vector scaling: one offset per class

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated logits (N, K); softmax of them are the calibrated probabilities."""
        if self.method == "temperature":
            return logits / logits.dtype.type(self.temperature)
        if self.method == "bias":
            return logits / logits.dtype.type(self.temperature) + np.asarray(
                self.bias, logits.dtype
            )
        if self.method == "vector":
            return logits * np.asarray(self.scale, logits.dtype) + np.asarray(
                self.bias, logits.dtype
            )
        return logits

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (N, K): the softmax of :meth:`apply`, in its dtype."""
        return softmax(self.apply(logits))

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "temperature": self.temperature,
            "scale": list(self.scale),
            "bias": list(self.bias),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Calibration:
        if not d:
            return cls()
        return cls(d["method"], float(d["temperature"]), tuple(d["scale"]), tuple(d["bias"]))


def nll(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits)``."""
    return float(cross_entropy.forward(logits.astype(np.float64), labels)[0])


def _fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Golden-section search of log T in [-3, 3] (the NLL is unimodal in T)."""
    lo, hi = -3.0, 3.0
    ratio = (math.sqrt(5) - 1) / 2

    def f(log_t: float) -> float:
        return nll(logits / math.exp(log_t), labels)

    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = f(a), f(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = f(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = f(b)
    return math.exp((lo + hi) / 2)


@attrs.frozen(eq=False)
class _Vector:
    scale: np.ndarray
    bias: np.ndarray


def _fit_affine(
    logits: np.ndarray, labels: np.ndarray, temperature: float, per_class_scale: bool, steps=800
) -> _Vector:
    """Adam on the NLL of ``z·w + b``, started from the temperature solution; ``w`` is one
    shared scale unless ``per_class_scale``."""
    z = logits.astype(np.float64)
    k = z.shape[1]
    params = _Vector(np.full(k if per_class_scale else 1, 1.0 / temperature), np.zeros(k))
    opt = optim.adam(0.02)
    state = opt.init(params)
    for _ in range(steps):
        _, cache = cross_entropy.forward(z * params.scale + params.bias, labels)
        dz = cross_entropy.backward(cache)
        dscale = (
            np.sum(dz * z, axis=0) if per_class_scale else np.sum(dz * z, keepdims=True).reshape(1)
        )
        grads = _Vector(dscale, np.sum(dz, axis=0))
        updates, state = opt.update(grads, state, params)
        params = optim.apply_updates(params, updates)
    return params


METHODS = ("none", "temperature", "bias", "vector")


def fit(logits: np.ndarray, labels: np.ndarray, method: str) -> Calibration:
    """Fit ``method`` (none, temperature, bias or vector) on validation logits and labels.

    Bias and vector scaling are kept only when they lower the validation NLL below
    temperature scaling's; otherwise the temperature is returned.
    """
    if method == "none":
        return Calibration()
    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {', '.join(METHODS)}; got {method!r}")
    temperature = _fit_temperature(logits, labels)
    cal = Calibration("temperature", temperature)
    if method == "temperature":
        return cal
    v = _fit_affine(logits, labels, temperature, per_class_scale=method == "vector")
    if method == "vector":
        fitted = Calibration("vector", temperature, tuple(v.scale.tolist()), tuple(v.bias.tolist()))
    else:
        fitted = Calibration("bias", 1.0 / float(v.scale[0]), (), tuple(v.bias.tolist()))
    if nll(fitted.apply(logits.astype(np.float64)), labels) < nll(cal.apply(logits), labels):
        cal = fitted
    return cal

"""Post-hoc calibration of a classifier's logits, fitted on the validation split.

- ``temperature``: ``z / T`` with one ``T > 0`` (Guo et al. 2017); keeps the argmax.
- ``vector``: ``z · w + b`` with a scale and a bias per class; also corrects the prior
  shift that class weighting or balanced sampling leaves behind, so it can change the
  argmax.

Both minimize the validation negative log-likelihood; the fitted parameters are stored
in the checkpoint's manifest and applied at inference.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

from fcnn import optim
from fcnn.losses import cross_entropy

__all__ = ["Calibration", "fit", "nll"]


@attrs.frozen
class Calibration:
    method: str = "none"  # none | temperature | vector
    temperature: float = 1.0
    scale: tuple[float, ...] = ()  # vector scaling: one factor per class
    bias: tuple[float, ...] = ()  # vector scaling: one offset per class

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated logits (N, K); softmax of them are the calibrated probabilities."""
        if self.method == "temperature":
            return logits / logits.dtype.type(self.temperature)
        if self.method == "vector":
            return logits * np.asarray(self.scale, logits.dtype) + np.asarray(
                self.bias, logits.dtype
            )
        return logits

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


def _fit_vector(logits: np.ndarray, labels: np.ndarray, temperature: float, steps: int = 800):
    """Adam on the NLL of ``z·w + b``, started from the temperature solution."""
    z = logits.astype(np.float64)
    k = z.shape[1]
    params = _Vector(np.full(k, 1.0 / temperature), np.zeros(k))
    opt = optim.adam(0.02)
    state = opt.init(params)
    for _ in range(steps):
        _, cache = cross_entropy.forward(z * params.scale + params.bias, labels)
        dz = cross_entropy.backward(cache)
        grads = _Vector(np.sum(dz * z, axis=0), np.sum(dz, axis=0))
        updates, state = opt.update(grads, state, params)
        params = optim.apply_updates(params, updates)
    return params


def fit(logits: np.ndarray, labels: np.ndarray, method: str) -> Calibration:
    """Fit ``method`` (none, temperature or vector) on validation logits and labels.

    Vector scaling is kept only when it lowers the validation NLL below temperature
    scaling's; otherwise the temperature is returned.
    """
    if method == "none":
        return Calibration()
    if method not in ("temperature", "vector"):
        raise ValueError(f"calibration method must be none, temperature or vector; got {method!r}")
    temperature = _fit_temperature(logits, labels)
    cal = Calibration("temperature", temperature)
    if method == "vector":
        v = _fit_vector(logits, labels, temperature)
        vec = Calibration("vector", temperature, tuple(v.scale.tolist()), tuple(v.bias.tolist()))
        if nll(vec.apply(logits.astype(np.float64)), labels) < nll(cal.apply(logits), labels):
            cal = vec
    return cal

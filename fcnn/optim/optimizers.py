"""Named optimizers, each a :func:`~fcnn.optim.transforms.chain` of transforms.

- ``sgd``: ``weight_decay`` is L2 (added to the gradient before momentum, as PyTorch).
- ``adam``: ``weight_decay`` is L2 as well.
- ``adamw``: ``weight_decay`` is decoupled (``p ← p − lr·(adam + wd·p)``).
- ``clip_norm`` on any of them clips the raw gradient's global norm first.
"""

from __future__ import annotations

from fcnn.optim import transforms as t
from fcnn.optim.transforms import GradientTransformation, Schedule

__all__ = ["adam", "adamw", "sgd"]


def _clip(clip_norm: float | None) -> list[GradientTransformation]:
    return [] if clip_norm is None else [t.clip_by_global_norm(clip_norm)]


def sgd(
    learning_rate: float | Schedule,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    clip_norm: float | None = None,
) -> GradientTransformation:
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay."""
    if nesterov and momentum == 0.0:
        raise ValueError("nesterov=True needs a momentum above 0")
    parts = _clip(clip_norm)
    if weight_decay:
        parts.append(t.add_decayed_weights(weight_decay))
    if momentum:
        parts.append(t.trace(momentum, nesterov))
    parts.append(t.scale_by_learning_rate(learning_rate))
    return t.chain(*parts)


def adam(
    learning_rate: float | Schedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    clip_norm: float | None = None,
) -> GradientTransformation:
    """Adam (Kingma & Ba) with optional L2 weight decay."""
    parts = _clip(clip_norm)
    if weight_decay:
        parts.append(t.add_decayed_weights(weight_decay))
    parts += [t.scale_by_adam(b1, b2, eps), t.scale_by_learning_rate(learning_rate)]
    return t.chain(*parts)


def adamw(
    learning_rate: float | Schedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    clip_norm: float | None = None,
) -> GradientTransformation:
    """Adam with decoupled weight decay (Loshchilov & Hutter)."""
    parts = _clip(clip_norm)
    parts.append(t.scale_by_adam(b1, b2, eps))
    if weight_decay:
        parts.append(t.add_decayed_weights(weight_decay))
    parts.append(t.scale_by_learning_rate(learning_rate))
    return t.chain(*parts)

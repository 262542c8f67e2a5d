"""The sections of a training config that say how to train: ``train:`` (the optimizer, its
schedule and parameter groups, Lookahead, averaging, fine-tuning), ``whitening:`` (the
data-dependent first layer) and ``evaluate:`` (test-time augmentation, the report run).
:mod:`fcnn.training.config` assembles them with the data and output sections into a
:class:`~fcnn.training.config.Config` and re-exports them."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from fcnn.training.structure import ConfigError, in_range

__all__ = [
    "EvaluateConfig",
    "LookaheadConfig",
    "ParamGroupConfig",
    "SchedulerConfig",
    "TrainConfig",
    "WhiteningConfig",
]


def _piecewise_points(instance: Any, _attribute: attrs.Attribute, value: tuple) -> None:
    if instance.name != "piecewise":
        if value:
            raise ConfigError("train.scheduler.points: only the piecewise schedule takes points")
        return
    from fcnn.optim.schedules import piecewise_linear

    try:
        piecewise_linear(1.0, 1, value)
    except ValueError as exc:
        raise ConfigError(f"train.scheduler.points: {exc}") from None


@attrs.frozen
class SchedulerConfig:
    """Learning-rate schedule; ``step_size`` and ``warmup_epochs`` count epochs. ``piecewise``
    multiplies the rate by a piecewise-linear factor of the training's progress, through
    ``points`` ``[progress, factor]`` from progress 0 to 1 (airbench's triangle:
    ``[[0, 0.2], [0.2, 1], [1, 0]]``)."""

    name: Literal["constant", "step", "exponential", "cosine", "piecewise"] = "constant"
    step_size: int = attrs.field(default=1, validator=in_range(1))
    gamma: float = attrs.field(default=0.1, validator=in_range(0.0, 1.0))
    final_lr: float = attrs.field(default=0.0, validator=in_range(0.0))
    warmup_epochs: float = attrs.field(default=0.0, validator=in_range(0.0))
    points: tuple[tuple[float, float], ...] = attrs.field(default=(), validator=_piecewise_points)


@attrs.frozen
class ParamGroupConfig:
    """One ``train.param_groups`` entry: the parameters whose tree path matches ``match`` (a
    shell pattern, :mod:`fcnn.optim.groups`; ``"*.beta"``: every BatchNorm shift) train at
    ``lr_scale`` times the learning rate with ``weight_decay_scale`` times the weight decay,
    and only for their first ``epochs`` epochs when that is set."""

    match: str
    lr_scale: float = attrs.field(default=1.0, validator=in_range(0.0))
    weight_decay_scale: float = attrs.field(default=1.0, validator=in_range(0.0))
    epochs: float | None = attrs.field(default=None, validator=in_range(0.0))


@attrs.frozen
class LookaheadConfig:
    """``train.lookahead``: every ``every`` steps the weights (and BatchNorm statistics) are
    mixed into a slow copy and restarted from it, with airbench's decay
    ``decay**every · (step / steps)³`` (:func:`fcnn.optim.averaging.lookahead_decay`); the
    run ends on the slow weights."""

    every: int = attrs.field(default=5, validator=in_range(1))
    decay: float = attrs.field(default=0.95, validator=in_range(0.0, 1.0, open_high=True))


@attrs.frozen
class TrainConfig:
    """The ``train:`` section: epochs, batch size, the optimizer and its schedule,
    regularization, averaging, fine-tuning and freezing (each key in the docs' config table)."""

    epochs: int = attrs.field(validator=in_range(1))
    lr: float = attrs.field(validator=in_range(1e-12))
    batch_size: int = attrs.field(default=128, validator=in_range(1))
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    momentum: float = attrs.field(default=0.0, validator=in_range(0.0, 1.0, open_high=True))
    nesterov: bool = False
    weight_decay: float = attrs.field(default=0.0, validator=in_range(0.0))
    betas: tuple[float, float] = (0.9, 0.999)
    clip_norm: float | None = attrs.field(default=None, validator=in_range(1e-12))
    label_smoothing: float = attrs.field(default=0.0, validator=in_range(0.0, 1.0, open_high=True))
    eval_batch_size: int = attrs.field(default=500, validator=in_range(1))
    scheduler: SchedulerConfig = SchedulerConfig()
    # validate, keep and ship an exponential moving average of the weights with this decay
    # (fcnn.optim.averaging), or the weights themselves (null)
    ema_decay: float | None = attrs.field(
        default=None, validator=in_range(0.0, 1.0, open_high=True)
    )
    # With several processes (mpiexec): BatchNorm statistics of the whole global batch
    # instead of each process's shard (off by default, as in PyTorch's DDP).
    sync_batchnorm: bool = False
    # fine-tuning (fcnn.training.finetune): start from this checkpoint's weights wherever
    # their tree path and shape match, and keep these layers (indices or path prefixes) fixed
    init_from: str | None = None
    freeze: tuple[int | str, ...] = ()
    # per-group learning-rate and weight-decay multipliers, by tree path (first match wins)
    param_groups: tuple[ParamGroupConfig, ...] = ()
    lookahead: LookaheadConfig | None = None


@attrs.frozen
class WhiteningConfig:
    """``whitening``: before the first step, set the filters of convolution ``layer`` (no
    padding, ``2·C·KH·KW`` outputs) to the whitening of the patches of the first ``images``
    normalized training images (:func:`fcnn.whitening.patch_whitening`, with ``eps``); a
    data-dependent initialization, stored in the checkpoints like any weights. Freeze its
    weights with ``train.freeze: ["<layer>.w"]`` to keep them."""

    layer: int = attrs.field(default=0, validator=in_range(0))
    images: int = attrs.field(default=5000, validator=in_range(1))
    eps: float = attrs.field(default=5e-4, validator=in_range(1e-12))


@attrs.frozen
class EvaluateConfig:
    """``evaluate.tta``: the test-time augmentation level (:mod:`fcnn.tta`) of the final
    test, ``fcnn evaluate`` and the model's predictions: 0 none, 1 mirror, 2 mirror and
    ±1-pixel translations. Validation during training runs without it.
    ``evaluate.test_every_epoch``: a *report run* also evaluates the test split (with that
    TTA) after every epoch, outside the epoch's timed part, as ``test_acc`` in
    ``metrics.csv`` (``python -m benchmarks.time_to_accuracy`` reads it); a run whose time
    matters leaves it off, and no model is ever chosen by it."""

    tta: Literal[0, 1, 2] = 0
    test_every_epoch: bool = False

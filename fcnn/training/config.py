"""Training configs: YAML parsed once into frozen, validated objects.

Every field, its type and its allowed values are declared here or, for the sections that
say how to train (``train``, ``whitening``, ``evaluate``), in :mod:`fcnn.training.train_config`
(all listed in docs/how-to/train.md, "The config"). Unknown keys, wrong types, missing required
fields and out-of-range values are :class:`ConfigError` s that name the key and
the file. Command-line overrides (``--set train.epochs=3``) are applied to the
raw YAML before validation, so they are checked the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import attrs

from fcnn import models
from fcnn.decision import AnswerRules
from fcnn.training.structure import ConfigError, in_range, read_yaml, structure
from fcnn.training.train_config import (
    EvaluateConfig,
    LookaheadConfig,
    ParamGroupConfig,
    SchedulerConfig,
    TrainConfig,
    WhiteningConfig,
)

__all__ = [
    "AugmentConfig",
    "CheckpointConfig",
    "Config",
    "ConfigError",
    "CsvLoggerConfig",
    "DataConfig",
    "EarlyStoppingConfig",
    "EvaluateConfig",
    "LookaheadConfig",
    "NormalizationConfig",
    "ParamGroupConfig",
    "SchedulerConfig",
    "TrainConfig",
    "WhiteningConfig",
    "apply_overrides",
    "load_config",
    "parse_config",
]

Monitor = Literal["val_loss", "val_acc", "val_balanced_acc"]


MAX_IMAGE_SIDE = 4096  # pixels: a resize target beyond it is a typo, and costs gigabytes


def _image_size(_instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and not all(1 <= side <= MAX_IMAGE_SIDE for side in value):
        raise ConfigError(
            f"{attribute.name} must be [H, W] with sides from 1 to {MAX_IMAGE_SIDE}, "
            f"got {list(value)}"
        )


@attrs.frozen
class AugmentConfig:
    """Random training-time transforms (see :class:`fcnn.data.transforms.Augmentation`)."""

    crop_padding: int = attrs.field(default=0, validator=in_range(0))
    crop_reflect: bool = False  # pad the crop with mirrored pixels instead of zeros
    hflip: bool = False
    alternating_flip: bool = False  # a random half mirrored in even epochs, the rest in odd
    vflip: bool = False
    rot90: bool = False
    brightness: float = attrs.field(default=0.0, validator=in_range(0.0))
    contrast: float = attrs.field(default=0.0, validator=in_range(0.0, 1.0, open_high=True))
    rotate: float = attrs.field(default=0.0, validator=in_range(0.0, 180.0))  # degrees
    scale: float = attrs.field(default=0.0, validator=in_range(0.0, 1.0, open_high=True))
    shift: float = attrs.field(default=0.0, validator=in_range(0.0, 0.5))  # of the image size
    color: float = attrs.field(default=0.0, validator=in_range(0.0))


def _positive_numbers(_instance: Any, attribute: attrs.Attribute, value: tuple) -> None:
    if any(v <= 0 for v in value):
        raise ConfigError(f"{attribute.name} must be positive numbers, got {list(value)}")


@attrs.frozen
class NormalizationConfig:
    """Per-channel ``mean`` and ``std`` in 0..255 pixels (e.g. a pretrained model's)."""

    mean: tuple[float, ...]
    std: tuple[float, ...] = attrs.field(validator=_positive_numbers)


def _validation_share(_instance: Any, attribute: attrs.Attribute, value: float) -> None:
    # every run validates (the kept model, callbacks and fits read it): a share above 0
    if not 0.0 < value < 1.0:
        raise ConfigError(
            f"{attribute.name} must lie strictly between 0 and 1 (every run keeps a validation "
            f"split; 0.02 of CIFAR-10 is 1,000 images), got {value!r}"
        )


@attrs.frozen
class DataConfig:
    """``class_weights``: none, ``balanced`` (inverse frequency), ``sqrt`` (inverse square
    root of the frequency, a milder correction) or one number per class;
    ``sampler``: ``shuffle`` or ``balanced`` (class-balanced sampling with replacement);
    ``limit_train`` / ``limit_test``: use a seeded subset of N examples (quick runs);
    ``image_size``: the [H, W] images are resized to (HAM10000: default [64, 64]; an image
    folder: required when its images differ in size);
    ``split_seed``: the seed of the test and validation splits and of the limits (default:
    the run's ``seed``), so that runs with different seeds can share one held-out split;
    ``root``: an image folder's folder (``dataset: imagefolder``), ``path``: an arrays file
    (``dataset: arrays``), each relative to the config file's folder;
    ``channels``: 1 (grey) or 3 (RGB, the default) for an image folder;
    ``test_fraction``: the share split off for testing when the data has no test split
    (HAM10000: 0.15, an image folder or arrays without a test part: 0.2);
    ``normalization``: fixed per-channel mean and std instead of those of the training set."""

    val_fraction: float = attrs.field(default=0.1, validator=_validation_share)
    image_size: tuple[int, int] | None = attrs.field(default=None, validator=_image_size)
    augment: AugmentConfig = AugmentConfig()
    class_weights: Literal["none", "balanced", "sqrt"] | tuple[float, ...] = "none"
    sampler: Literal["shuffle", "balanced"] = "shuffle"
    limit_train: int | None = attrs.field(default=None, validator=in_range(1))
    limit_test: int | None = attrs.field(default=None, validator=in_range(1))
    split_seed: int | None = attrs.field(default=None, validator=in_range(0))
    root: str | None = None
    path: str | None = None
    channels: Literal[1, 3] | None = None
    test_fraction: float | None = attrs.field(default=None, validator=in_range(0.01, 0.9))
    normalization: NormalizationConfig | None = None


@attrs.frozen
class EarlyStoppingConfig:
    """``early_stopping:``: stop after ``patience`` epochs without an improvement of
    ``monitor`` by more than ``min_delta`` (``mode: auto``: min for losses, max otherwise)."""

    monitor: Monitor = "val_loss"
    patience: int = attrs.field(default=5, validator=in_range(1))
    min_delta: float = attrs.field(default=0.0, validator=in_range(0.0))
    mode: Literal["auto", "min", "max"] = "auto"


@attrs.frozen
class CheckpointConfig:
    """``checkpoint:``: which model the run keeps as ``best.npz``, and a file that receives a
    copy of the finished model. ``keep: best`` (the default) keeps the epoch with the best
    ``monitor``; ``keep: last`` keeps the last epoch's, for recipes whose schedule ends on
    the weights to use (a learning rate annealed to 0, Lookahead's averaging), where a small
    validation split would pick an earlier epoch by chance. ``monitor`` also decides whether
    the copy may replace a model already at ``filepath``."""

    filepath: str | None = None  # a copy of the run's final model (the run keeps best.npz)
    monitor: Monitor = "val_acc"
    mode: Literal["auto", "min", "max"] = "auto"
    keep: Literal["best", "last"] = "best"


@attrs.frozen
class CsvLoggerConfig:
    """``csv_logger:``: where the per-epoch metrics go (default ``metrics.csv`` in the run)."""

    filepath: str | None = None  # default: metrics.csv in the run folder


def _recall_floors(_instance: Any, attribute: attrs.Attribute, value: dict) -> None:
    for name, floor in value.items():
        if not isinstance(floor, (int, float)) or isinstance(floor, bool) or not 0 <= floor <= 1:
            raise ConfigError(
                f"{attribute.name}: the recall floor of {name!r} must be a number in [0, 1], "
                f"got {floor!r}"
            )


@attrs.frozen
class DecisionConfig:
    """How the answered class is chosen from the calibrated probabilities
    (:mod:`fcnn.decision`): ``argmax``, or ``prior_corrected`` with the prior exponent
    fitted on validation for the best balanced accuracy at ``min_accuracy`` or above (and
    each class named in ``min_recall`` at its recall floor or above; recall floors that no
    exponent meets are dropped)."""

    rule: Literal["argmax", "prior_corrected"] = "argmax"
    min_accuracy: float = attrs.field(default=0.0, validator=in_range(0.0, 1.0))
    # optional recall floors on validation, by class name, e.g. {mel: 0.6}
    min_recall: dict[str, float] = attrs.field(factory=dict, validator=_recall_floors)


CALLBACKS: dict[str, type] = {
    "early_stopping": EarlyStoppingConfig,
    "checkpoint": CheckpointConfig,
    "csv_logger": CsvLoggerConfig,
}


@attrs.frozen
class Config:
    """A whole training config, parsed and validated: the data set, the model, the
    ``train`` section, the data options, the fits after training, callbacks and outputs."""

    # a registered data set (fcnn.data.names(): mnist, cifar10, ham10000, imagefolder, arrays,
    # and any a plugin adds)
    dataset: str
    # a preset's name (fcnn.models), or a network as a layer spec (the JSON layer.spec gives;
    # a .yaml/.json file named here is read into it, relative to the config's folder)
    model: str | dict[str, Any]
    train: TrainConfig
    seed: int = attrs.field(default=0, validator=in_range(0))
    model_options: dict[str, Any] = attrs.field(factory=dict)
    data: DataConfig = DataConfig()
    callbacks: tuple[Any, ...] = ()
    calibration: Literal["none", "temperature", "bias", "vector"] = "none"
    decision: DecisionConfig = DecisionConfig()
    # how the answer is flagged (uncertain, high risk), stored in the model for its users
    answer_rules: AnswerRules | None = None
    # when set, answer_rules.high_risk_at is fitted on validation: the largest threshold at
    # which this share of the lesions of the high-risk classes is flagged high
    screening_sensitivity: float | None = attrs.field(default=None, validator=in_range(0.5, 1.0))
    # when set, answer_rules.uncertain_below is fitted on validation: the largest threshold at
    # which at most this share of the lesions is answered uncertain (out of distribution too)
    uncertain_share: float | None = attrs.field(default=None, validator=in_range(0.0, 0.5))
    ood_quantile: float | None = attrs.field(default=None, validator=in_range(0.5, 1.0))
    whitening: WhiteningConfig | None = None
    evaluate: EvaluateConfig = EvaluateConfig()
    runs_dir: str = "runs"
    reports_dir: str | None = None  # where results.csv gets a row; None: runs_dir
    name: str = ""  # filled from the file name when empty
    # the --set overrides the file was read with: a record for the run's ledger, not a setting
    overrides: tuple[str, ...] = ()

    @property
    def model_name(self) -> str:
        """The preset's name, or for a network written as a spec the config's name."""
        return self.model if isinstance(self.model, str) else (self.name or "custom")

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data (the form written to run folders and checkpoints)."""
        raw = attrs.asdict(self, recurse=True)
        raw["callbacks"] = [{_callback_name(cb): attrs.asdict(cb)} for cb in self.callbacks]
        return _plain(raw)


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively: the YAML/JSON form of a config."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _callback_name(cb: Any) -> str:
    return next(name for name, cls in CALLBACKS.items() if isinstance(cb, cls))


def _callbacks(raw: Any, where: str) -> tuple[Any, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: expected a list of callbacks, got {raw!r}")
    out = []
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(item, dict) or len(item) != 1:
            raise ConfigError(
                f"{here}: each callback is a one-key mapping like 'early_stopping: {{...}}'"
            )
        ((name, body),) = item.items()
        if name not in CALLBACKS:
            raise ConfigError(
                f"{here}: unknown callback {name!r}; choose one of {', '.join(CALLBACKS)}"
            )
        out.append(structure(CALLBACKS[name], body, f"{here}.{name}"))
    return tuple(out)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``raw`` with each ``dotted.key=value`` set (values parsed as YAML)."""
    import copy

    out = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.path=value")
        path, text = item.split("=", 1)
        keys = path.strip().split(".")
        node = out
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {} if node.get(k) is None else node[k]
                if not isinstance(node[k], dict):
                    raise ConfigError(f"override {item!r}: {k} is not a section")
            node = node[k]
        try:
            node[keys[-1]] = read_yaml(text)
        except ConfigError as exc:
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({exc})") from None
    return out


SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def _model(raw: Any, where: str) -> str | dict[str, Any]:
    """A config's ``model``: a registered preset's name or a layer spec that builds."""
    if isinstance(raw, dict):
        try:
            models.from_spec(raw, ())
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: not a network fcnn can build: {exc}") from None
        return raw
    if isinstance(raw, str):
        if raw.endswith(SPEC_SUFFIXES):
            raise ConfigError(f"{where}: {raw} was not read: spec files are read by load_config")
        if raw not in models.names():
            raise ConfigError(
                f"{where}: unknown model {raw!r}; choose a preset ({', '.join(models.names())}; "
                "fcnn models lists them), write the network as a layer spec, or name a "
                ".yaml/.json spec file. A preset of your own needs the module that registers "
                "it: fcnn --plugin MODULE"
            )
        return raw
    raise ConfigError(
        f"{where}: expected a preset name, a layer spec (a mapping with 'type') or the path of "
        f"a .yaml/.json spec file, got {raw!r}"
    )


def _dataset(raw: Any, where: str) -> str:
    from fcnn import data  # the registry; loaders import Pillow, so only when a config is read

    if not isinstance(raw, str) or raw not in data.names():
        raise ConfigError(
            f"{where}: unknown dataset {raw!r}; choose one of {', '.join(data.names())} (a "
            "data set of your own needs the module that registers it: fcnn --plugin MODULE)"
        )
    return raw


def _absolute_data_paths(config: Config, base: Path) -> Config:
    """``config`` with ``data.root`` and ``data.path`` made absolute from ``base``, so that the
    config stored in a run and its checkpoints finds them from any folder."""
    changes = {
        key: str((base / Path(value).expanduser()).resolve())
        for key in ("root", "path")
        if (value := getattr(config.data, key)) is not None
    }
    return attrs.evolve(config, data=attrs.evolve(config.data, **changes)) if changes else config


def _read_yaml_file(path: Path, what: str) -> Any:
    """The YAML in ``path`` (``what`` it is, for messages); ConfigError in one line when the
    file is missing, unreadable or not such YAML."""
    try:
        return read_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc})") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc}") from None


def _read_model_file(raw: Any, base: Path) -> Any:
    """``raw`` with a ``model`` naming a .yaml/.json file replaced by the spec in it (the
    path relative to ``base``, the config's folder)."""
    model = raw.get("model") if isinstance(raw, dict) else None
    if not isinstance(model, str) or not model.endswith(SPEC_SUFFIXES):
        return raw
    path = base / Path(model).expanduser()
    try:
        spec = _read_yaml_file(path, "the spec file")
    except ConfigError as exc:
        raise ConfigError(f"model: {exc}") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"model: {path} holds no layer spec (a mapping with 'type')")
    return {**raw, "model": spec}


def parse_config(raw: Any, *, name: str = "", base: str | Path = ".") -> Config:
    """A validated :class:`Config` from plain data; a ``model`` that names a spec file is read
    relative to ``base``."""
    raw = _read_model_file(raw, Path(base))
    config = structure(
        Config, raw, special={"callbacks": _callbacks, "model": _model, "dataset": _dataset}
    )
    config = _absolute_data_paths(config, Path(base))
    if isinstance(config.model, dict) and config.model_options:
        raise ConfigError(
            "model_options apply to presets; a network written as a layer spec states its "
            "own hyperparameters"
        )
    return config if config.name else attrs.evolve(config, name=name)


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read, override and validate a YAML config; errors name the key and the file."""
    path = Path(path)
    raw = _read_yaml_file(path, "the config")
    try:
        raw = apply_overrides(raw or {}, overrides or [])
        config = parse_config(raw, name=path.stem, base=path.parent)
        return attrs.evolve(config, overrides=config.overrides + tuple(overrides or ()))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None

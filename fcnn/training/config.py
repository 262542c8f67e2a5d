"""Training configs: YAML parsed once into frozen, validated objects.

Every field, its type and its allowed values are declared here (and listed in
the README's "Config reference"). Unknown keys, wrong types, missing required
fields and out-of-range values are :class:`ConfigError` s that name the key and
the file. Command-line overrides (``--set train.epochs=3``) are applied to the
raw YAML before validation, so they are checked the same way.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import attrs
import yaml

__all__ = [
    "AugmentConfig",
    "CheckpointConfig",
    "Config",
    "ConfigError",
    "CsvLoggerConfig",
    "DataConfig",
    "EarlyStoppingConfig",
    "SchedulerConfig",
    "TrainConfig",
    "apply_overrides",
    "load_config",
    "parse_config",
]

Monitor = Literal["val_loss", "val_acc", "val_balanced_acc"]


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key and the file."""


def _in_range(low: float | None = None, high: float | None = None, *, open_high: bool = False):
    def check(inst: Any, attr: attrs.Attribute, value: Any) -> None:
        if value is None:
            return
        if (low is not None and value < low) or (
            high is not None and (value >= high if open_high else value > high)
        ):
            bound = (
                f"[{low}, {high}{')' if open_high else ']'}" if high is not None else f">= {low}"
            )
            raise ConfigError(f"{attr.name} must be {bound}, got {value!r}")

    return check


@attrs.frozen
class SchedulerConfig:
    """Learning-rate schedule; ``step_size`` and ``warmup_epochs`` count epochs."""

    name: Literal["constant", "step", "exponential", "cosine"] = "constant"
    step_size: int = attrs.field(default=1, validator=_in_range(1))
    gamma: float = attrs.field(default=0.1, validator=_in_range(0.0, 1.0))
    final_lr: float = attrs.field(default=0.0, validator=_in_range(0.0))
    warmup_epochs: float = attrs.field(default=0.0, validator=_in_range(0.0))


@attrs.frozen
class TrainConfig:
    epochs: int = attrs.field(validator=_in_range(1))
    lr: float = attrs.field(validator=_in_range(1e-12))
    batch_size: int = attrs.field(default=128, validator=_in_range(1))
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    momentum: float = attrs.field(default=0.0, validator=_in_range(0.0, 1.0, open_high=True))
    nesterov: bool = False
    weight_decay: float = attrs.field(default=0.0, validator=_in_range(0.0))
    betas: tuple[float, float] = (0.9, 0.999)
    clip_norm: float | None = attrs.field(default=None, validator=_in_range(1e-12))
    label_smoothing: float = attrs.field(default=0.0, validator=_in_range(0.0, 1.0, open_high=True))
    eval_batch_size: int = attrs.field(default=500, validator=_in_range(1))
    scheduler: SchedulerConfig = SchedulerConfig()
    # With several processes (mpiexec): BatchNorm statistics of the whole global batch
    # instead of each process's shard (off by default, as in PyTorch's DDP).
    sync_batchnorm: bool = False


@attrs.frozen
class AugmentConfig:
    """Random training-time transforms (see :class:`fcnn.data.transforms.Augmentation`)."""

    crop_padding: int = attrs.field(default=0, validator=_in_range(0))
    hflip: bool = False
    vflip: bool = False
    rot90: bool = False
    brightness: float = attrs.field(default=0.0, validator=_in_range(0.0))
    contrast: float = attrs.field(default=0.0, validator=_in_range(0.0, 1.0, open_high=True))


@attrs.frozen
class DataConfig:
    """``class_weights``: none, ``balanced`` (inverse frequency), ``sqrt`` (inverse square
    root of the frequency, a milder correction) or one number per class;
    ``sampler``: ``shuffle`` or ``balanced`` (class-balanced sampling with replacement);
    ``limit_train`` / ``limit_test``: use a seeded subset of N examples (quick runs);
    ``image_size``: the [H, W] HAM10000 images are resized to (default [64, 64]);
    ``split_seed``: the seed of the test and validation splits and of the limits (default:
    the run's ``seed``), so that runs with different seeds can share one held-out split."""

    val_fraction: float = attrs.field(default=0.1, validator=_in_range(0.0, 1.0, open_high=True))
    image_size: tuple[int, int] | None = None  # HAM10000 only (default 64x64)
    augment: AugmentConfig = AugmentConfig()
    class_weights: Literal["none", "balanced", "sqrt"] | tuple[float, ...] = "none"
    sampler: Literal["shuffle", "balanced"] = "shuffle"
    limit_train: int | None = attrs.field(default=None, validator=_in_range(1))
    limit_test: int | None = attrs.field(default=None, validator=_in_range(1))
    split_seed: int | None = attrs.field(default=None, validator=_in_range(0))


@attrs.frozen
class EarlyStoppingConfig:
    monitor: Monitor = "val_loss"
    patience: int = attrs.field(default=5, validator=_in_range(1))
    min_delta: float = attrs.field(default=0.0, validator=_in_range(0.0))
    mode: Literal["auto", "min", "max"] = "auto"


@attrs.frozen
class CheckpointConfig:
    filepath: str | None = None  # a copy of the run's final model (the run keeps best.npz)
    monitor: Monitor = "val_acc"
    mode: Literal["auto", "min", "max"] = "auto"


@attrs.frozen
class CsvLoggerConfig:
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
    min_accuracy: float = attrs.field(default=0.0, validator=_in_range(0.0, 1.0))
    # optional recall floors on validation, by class name, e.g. {mel: 0.6}
    min_recall: dict[str, float] = attrs.field(factory=dict, validator=_recall_floors)


CALLBACKS: dict[str, type] = {
    "early_stopping": EarlyStoppingConfig,
    "checkpoint": CheckpointConfig,
    "csv_logger": CsvLoggerConfig,
}


@attrs.frozen
class Config:
    dataset: Literal["mnist", "cifar10", "ham10000"]
    model: str
    train: TrainConfig
    seed: int = attrs.field(default=0, validator=_in_range(0))
    model_options: dict[str, Any] = attrs.field(factory=dict)
    data: DataConfig = DataConfig()
    callbacks: tuple[Any, ...] = ()
    calibration: Literal["none", "temperature", "bias", "vector"] = "none"
    decision: DecisionConfig = DecisionConfig()
    ood_quantile: float | None = attrs.field(default=None, validator=_in_range(0.5, 1.0))
    runs_dir: str = "runs"
    reports_dir: str | None = None  # where results.csv gets a row; None: runs_dir
    name: str = ""  # filled from the file name when empty

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


# ----------------------------------------------------------------------------- structuring


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return "a list"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"{where}: must be one of {', '.join(map(repr, args))}; got {value!r}")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in args:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where)
            except ConfigError:
                continue  # the next option may take it; the message below names them all
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(
            _convert(a, v, f"{where}[{i}]")
            for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if attrs.has(tp):
        return _structure(tp, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    raise ConfigError(f"{where}: unsupported field type {tp!r}")  # a bug in this module


def _structure(cls: type, raw: Any, where: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'the config'}: expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in attrs.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown key {prefix}{unknown[0]!s}; allowed keys here: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, field in fields.items():
        key = f"{where}.{name}" if where else name
        if name not in raw:
            if field.default is attrs.NOTHING:
                raise ConfigError(f"missing required key {key}")
            continue
        if name == "callbacks" and cls is Config:
            kwargs[name] = _callbacks(raw[name], key)
        else:
            kwargs[name] = _convert(hints[name], raw[name], key)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where + ': ' if where else ''}{exc}") from None


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
        out.append(_structure(CALLBACKS[name], body, f"{here}.{name}"))
    return tuple(out)


# ----------------------------------------------------------------------------- entry points


class _Loader(yaml.SafeLoader):
    """Safe YAML that also reads ``1e-3`` as a number (PyYAML's YAML 1.1 wants ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


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
            node[keys[-1]] = _yaml(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({exc})") from None
    return out


def parse_config(raw: Any, *, name: str = "") -> Config:
    """A validated :class:`Config` from plain data."""
    config = _structure(Config, raw, "")
    return config if config.name else attrs.evolve(config, name=name)


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read, override and validate a YAML config; errors name the key and the file."""
    path = Path(path)
    try:
        raw = _yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc})") from None
    try:
        raw = apply_overrides(raw or {}, overrides or [])
        return parse_config(raw, name=path.stem)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None

"""The config a run or a trained model carries, and what a command line may change of it.

``--resume``: the run's own config decides, except the epoch count.

A run is continued with the config stored in its ``last.npz``. A config or override given
with it must agree with that config in every key but ``train.epochs``: a run's model,
data, optimizer and seed cannot change half-way without it becoming another run.
``train.epochs`` may grow (or shrink to no fewer than the epochs done): the learning-rate
schedule is then rebuilt for the new total and continues from the current step, which is
not bit-identical to a run started with that total (a cosine schedule, for one, bends
differently).

evaluate, calibrate, export (:func:`model_config`): the model's stored config decides its
splits, normalization and architecture; a CONFIG may not contradict it there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fcnn.training.config import Config, ConfigError, apply_overrides, load_config, parse_config

__all__ = [
    "CHANGEABLE",
    "DECISIVE",
    "changed_keys",
    "model_config",
    "requested_config",
    "resumed_config",
]

# What a trained model's splits, normalization and architecture follow: a command that
# works on a trained model (evaluate, calibrate, export) takes these from the model
DECISIVE = ("dataset", "model", "model_options", "seed", "data")

CHANGEABLE = frozenset({"train.epochs"})


def _flat(raw: Any, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 0.1}}`` -> ``{"train.lr": 0.1}`` (lists stay values)."""
    if not isinstance(raw, dict):
        return {prefix: raw}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def changed_keys(stored: Config, requested: Config) -> list[str]:
    """The dotted keys whose values differ between two configs (``name`` and ``overrides``
    aside: the config file's stem and the record of its --set lines are not settings)."""
    a, b = _flat(stored.to_dict()), _flat(requested.to_dict())
    records = ("name", "overrides")
    return sorted(k for k in set(a) | set(b) if k not in records and a.get(k) != b.get(k))


def resumed_config(
    stored_raw: dict[str, Any], requested: Config | None, epochs_done: int
) -> tuple[Config, list[str]]:
    """The config a resumed run continues with, and lines for the log.

    ``requested`` (from a CONFIG and/or overrides given with ``--resume``) may differ from
    the stored config only in :data:`CHANGEABLE`; ConfigError lists every other key.
    """
    stored = parse_config(stored_raw)
    if requested is None:
        return stored, []
    changed = changed_keys(stored, requested)
    refused = [k for k in changed if k not in CHANGEABLE]
    if refused:
        raise ConfigError(
            "--resume continues a run with its own config, and the config given differs in "
            f"{', '.join(refused)}; leave CONFIG and --set out (only train.epochs may "
            "change), or start a new run"
        )
    if not changed:
        return stored, []
    epochs = requested.train.epochs
    if epochs < epochs_done:
        raise ConfigError(
            f"train.epochs={epochs} is fewer than the {epochs_done} epochs this run has done"
        )
    note = (
        f"train.epochs {stored.train.epochs} -> {epochs}: the learning-rate schedule is "
        f"rebuilt for {epochs} epochs and continues from the current step (not bit-identical "
        f"to a run started with {epochs} epochs)"
    )
    raw = stored.to_dict()
    raw["train"]["epochs"] = epochs
    return parse_config(raw), [note]


def requested_config(
    stored_raw: dict[str, Any], path: str | Path | None, overrides: list[str]
) -> Config | None:
    """What a ``--resume`` command line asks for: CONFIG with the overrides, or the stored
    config with them, or None when it names neither (the run's own config, unchanged)."""
    if path is not None:
        return load_config(path, overrides)
    if overrides:
        try:
            return parse_config(apply_overrides(stored_raw, overrides))
        except ConfigError as exc:
            raise ConfigError(f"--set with --resume: {exc}") from None
    return None


def model_config(
    stored_raw: dict[str, Any] | None,
    path: str | Path | None,
    overrides: list[str],
    what: str = "the model",
) -> Config:
    """The config of a trained model for evaluate, calibrate and export: the one stored in
    it. A CONFIG or overrides given as well may not change its :data:`DECISIVE` keys
    (ConfigError names them); other keys they set are ignored. A model that stores no
    config (an exported folder) needs CONFIG."""
    if stored_raw is None:
        if path is None:
            raise ConfigError(
                f"{what} stores no training config: give the CONFIG it was trained with"
            )
        return load_config(path, overrides)
    stored = parse_config(stored_raw)
    requested = requested_config(stored_raw, path, overrides)
    if requested is not None:
        decisive = [k for k in changed_keys(stored, requested) if k.split(".", 1)[0] in DECISIVE]
        if decisive:
            raise ConfigError(
                f"{what} was trained with another config: {', '.join(decisive)} differ. Its "
                "splits, normalization and architecture come from the config stored in it; "
                "leave CONFIG and --set out"
            )
    return stored

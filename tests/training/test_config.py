import textwrap
from pathlib import Path

import pytest

from fcnn.training.config import (
    CheckpointConfig,
    ConfigError,
    EarlyStoppingConfig,
    load_config,
    parse_config,
)

GOOD = """
dataset: mnist
model: lenet_mnist
seed: 42
train: {epochs: 15, batch_size: 128, lr: 0.01, optimizer: sgd, momentum: 0.9,
        weight_decay: 0.0005, scheduler: {name: step, step_size: 5, gamma: 0.5}}
callbacks:
  - early_stopping: {monitor: val_acc, patience: 3}
  - checkpoint: {filepath: "checkpoints/lenet_mnist_best.npz", monitor: val_acc, mode: max}
"""


def _write(tmp_path, text, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_the_documented_example_parses_into_frozen_objects(tmp_path):
    cfg = load_config(_write(tmp_path, GOOD))
    assert cfg.name == "exp" and cfg.train.momentum == 0.9 and cfg.train.scheduler.step_size == 5
    assert isinstance(cfg.callbacks[0], EarlyStoppingConfig) and cfg.callbacks[0].patience == 3
    assert isinstance(cfg.callbacks[1], CheckpointConfig)
    with pytest.raises(AttributeError):
        cfg.seed = 1  # frozen
    assert parse_config(cfg.to_dict()) == cfg  # the resolved form round-trips


@pytest.mark.parametrize("path", sorted(Path("configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_configs_are_valid_and_round_trip(path):
    cfg = load_config(path)
    assert cfg.train.epochs >= 1 and cfg.model_name
    assert parse_config(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (GOOD.replace("seed: 42", "seed: 42\nsede: 1"), "unknown key sede"),
        (GOOD.replace("momentum: 0.9", "momentum: 0.9, momentun: 1"), "unknown key train.momentun"),
        (
            GOOD.replace("batch_size: 128", "batch_size: big"),
            "train.batch_size: expected an integer",
        ),
        (GOOD.replace("model: lenet_mnist\n", ""), "missing required key model"),
        (GOOD.replace("optimizer: sgd", "optimizer: rmsprop"), "train.optimizer: must be one of"),
        (GOOD.replace("monitor: val_acc, patience", "monitor: acc, patience"), r"callbacks\[0\]"),
        (GOOD.replace("early_stopping:", "stop_early:"), "unknown callback 'stop_early'"),
        (GOOD.replace("momentum: 0.9", "momentum: 1.5"), "momentum must be"),
        (
            GOOD.replace("dataset: mnist", "dataset: svhn"),
            "unknown dataset .svhn.; choose one of arrays",
        ),
        (
            GOOD.replace("seed: 42", "seed: 42\ndecision: {min_recall: {'3': 1.5}}"),
            "recall floor of '3' must be a number in",
        ),
        (
            GOOD.replace("seed: 42", "seed: 42\nanswer_rules: {high_risk_at: 2}"),
            "answer_rules: high_risk_at must be a probability",
        ),
        (
            GOOD.replace("seed: 42", "seed: 42\nanswer_rules: {uncertain: 0.3}"),
            "unknown key answer_rules.uncertain",
        ),
        (
            GOOD.replace("seed: 42", "seed: 42\ndata: {val_fraction: 0}"),
            "val_fraction must lie strictly between 0 and 1",
        ),
    ],
)
def test_errors_name_the_key_and_the_file(tmp_path, edit, message):
    path = _write(tmp_path, edit)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_overrides_are_validated_like_the_file(tmp_path):
    path = _write(tmp_path, GOOD)
    cfg = load_config(path, ["train.epochs=3", "data.augment.hflip=true", "train.lr=1e-3"])
    assert cfg.train.epochs == 3 and cfg.data.augment.hflip and cfg.train.lr == 1e-3
    with pytest.raises(ConfigError, match="train.epochs: expected an integer"):
        load_config(path, ["train.epochs=many"])
    with pytest.raises(ConfigError, match="must look like key.path=value"):
        load_config(path, ["train.epochs"])


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="cannot read the config"):
        load_config(_write(tmp_path, "train: [unclosed"))


def test_class_weight_options_weigh_rare_classes_up():
    import numpy as np

    from fcnn.data.dataset import Dataset
    from fcnn.training.config import parse_config
    from fcnn.training.data import class_weights

    data = Dataset(
        np.zeros((40, 1, 1, 1), np.uint8), np.r_[np.zeros(30), np.ones(10)].astype(int), ("a", "b")
    )
    base = {"dataset": "mnist", "model": "lenet_mnist", "train": {"epochs": 1, "lr": 0.1}}

    def weights(value):
        return class_weights(parse_config({**base, "data": {"class_weights": value}}), data)

    assert weights("none") is None
    np.testing.assert_allclose(weights("balanced"), [40 / 60, 40 / 20])
    np.testing.assert_allclose(weights("sqrt"), np.sqrt([40 / 60, 40 / 20]), rtol=1e-6)
    np.testing.assert_allclose(weights([1.0, 3.0]), [1.0, 3.0])

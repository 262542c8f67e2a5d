"""The pieces of airbench's recipe through fcnn train: a whitening first layer, parameter
groups, the piecewise schedule, Lookahead, alternating flips, reflected crops and
test-time augmentation, on a small MNIST look-alike."""

import numpy as np
import pytest
from helpers import InterruptAt

from fcnn import checkpoint
from fcnn.data.transforms import normalize
from fcnn.testing import assert_trees_all_close
from fcnn.training.config import ConfigError
from fcnn.training.run import TrainingInterrupted, train
from fcnn.whitening import patch_whitening

NET = (
    "model={type: serial, layers: ["
    "{type: Conv2D, out_channels: 8, kernel_size: 2}, {type: GELU},"
    "{type: Conv2D, out_channels: 8, kernel_size: 3, padding: 1, w_init: dirac},"
    "{type: MaxPool2D, window: 2}, {type: BatchNorm2D, momentum: 0.6, eps: 1.0e-12, scale: false},"
    "{type: GELU}, {type: MaxPool2D, window: 3}, {type: Flatten},"
    "{type: Dense, out_features: 10, w_init: fan_in_uniform}, {type: Multiply, factor: 0.5}]}"
)
RECIPE = (
    NET,
    "whitening={layer: 0, images: 100}",
    "train.freeze=['0.w']",
    "train.param_groups=[{match: '*.beta', lr_scale: 4, weight_decay_scale: 0.25},"
    " {match: '0.b', epochs: 1}]",
    "train.weight_decay=0.0005",
    "train.momentum=0.85",
    "train.nesterov=true",
    "train.scheduler={name: piecewise, points: [[0, 0.2], [0.2, 1], [1, 0]]}",
    "train.lookahead={every: 3}",
    "data.augment={crop_padding: 2, crop_reflect: true, alternating_flip: true}",
    "evaluate={tta: 2}",
)


def _quiet(*_):
    return None



def test_the_recipe_trains_with_whitened_frozen_filters_and_tta(fake_mnist_root, tiny_config):
    lines = []
    result = train(tiny_config(*RECIPE), data_dir=fake_mnist_root, echo=lines.append)
    assert result.test_accuracy > 0.5  # ten classes of bright blocks: chance is 0.1
    assert any("whitening: layer 0's 8 filters" in line for line in lines)
    assert any("test-time augmentation level 2" in line for line in lines)
    ckpt = checkpoint.load(result.best_checkpoint)
    # the first layer's filters are still the whitening of the first 100 training images
    from fcnn.training.data import prepare_data

    data = prepare_data(tiny_config(*RECIPE), fake_mnist_root)
    expected = patch_whitening(normalize(data.train.images[:100], data.normalization), (2, 2), 5e-4)
    np.testing.assert_allclose(ckpt.group("params")["0.w"], expected, rtol=1e-6)
    assert "1.gamma" not in ckpt.group("params") and "4.beta" in ckpt.group("params")
    # the model keeps its TTA level for fcnn evaluate and predict
    import fcnn

    assert fcnn.load(result.best_checkpoint).tta == 2


def test_ctrl_c_and_resume_continue_lookahead_exactly(fake_mnist_root, tiny_config):
    cfg = tiny_config(*RECIPE)
    straight = train(cfg, data_dir=fake_mnist_root, echo=_quiet)
    with pytest.raises(TrainingInterrupted) as info:
        train(cfg, data_dir=fake_mnist_root, progress=InterruptAt(1, 4), echo=_quiet)
    assert checkpoint.load(info.value.path).group("slow_params")  # saved for the resume
    resumed = train(cfg, data_dir=fake_mnist_root, resume=info.value.path, echo=_quiet)
    for group in ("params", "slow_params", "state"):
        assert_trees_all_close(
            checkpoint.load(resumed.last_checkpoint).group(group),
            checkpoint.load(straight.last_checkpoint).group(group),
            rtol=0,
        )


def test_the_run_ends_on_the_slow_weights(fake_mnist_root, tiny_config):
    result = train(tiny_config(*RECIPE, "train.epochs=1"), data_dir=fake_mnist_root, echo=_quiet)
    last = checkpoint.load(result.last_checkpoint)
    assert_trees_all_close(last.group("params"), last.group("slow_params"), rtol=0)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.param_groups=[{match: '*.gamma'}]", r"match no parameter; the paths are: 0\.w"),
        ("whitening={layer: 2}", "a whitening convolution has 2·C·KH·KW = 144 outputs"),
        ("whitening={layer: 1}", "layer 1 must be a Conv2D"),
        ("train.scheduler={name: cosine, points: [[0, 1], [1, 0]]}", "only the piecewise"),
        ("train.scheduler={name: piecewise, points: [[0.5, 1], [1, 0]]}", "rises from 0"),
        ("evaluate={tta: 3}", "must be one of 0, 1, 2"),
    ],
)
def test_recipe_settings_that_cannot_work_are_clear_errors(
    fake_mnist_root, tiny_config, override, message
):
    with pytest.raises(ConfigError, match=message):
        train(tiny_config(*RECIPE, override), data_dir=fake_mnist_root, echo=_quiet)


def test_a_report_run_adds_each_epochs_test_accuracy_and_a_timed_run_does_not(
    fake_mnist_root, tiny_config
):
    import csv

    report_config = tiny_config(*RECIPE, "evaluate.test_every_epoch=true")
    report = train(report_config, data_dir=fake_mnist_root, echo=_quiet)
    with open(report.run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(0.0 <= float(r["test_acc"]) <= 1.0 for r in rows)
    timed = train(tiny_config(*RECIPE), data_dir=fake_mnist_root, echo=_quiet)
    with open(timed.run_dir / "metrics.csv", newline="") as f:
        assert "test_acc" not in next(csv.DictReader(f))

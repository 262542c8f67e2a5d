"""Epoch-end callbacks: what they decide, and that a resumed run decides the same."""

import math

from fcnn.training.callbacks import (
    BestCheckpoint,
    CsvLogger,
    EarlyStopping,
    Monitor,
    make_callbacks,
    resolve_mode,
)
from fcnn.training.config import CheckpointConfig, CsvLoggerConfig, EarlyStoppingConfig


def test_auto_mode_minimizes_losses_and_maximizes_the_rest():
    assert resolve_mode("val_loss", "auto") == "min"
    assert resolve_mode("val_balanced_acc", "auto") == "max"
    assert resolve_mode("val_acc", "min") == "min"


def test_a_monitor_counts_only_improvements_beyond_min_delta():
    m = Monitor("val_loss", "auto", min_delta=0.1)
    assert m.improved({"val_loss": 1.0}) and m.best == 1.0
    assert not m.improved({"val_loss": 0.95})  # better, but by less than min_delta
    assert m.improved({"val_loss": 0.8}) and m.best == 0.8


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    stop = EarlyStopping(EarlyStoppingConfig(monitor="val_acc", patience=2))
    decisions = [stop.on_epoch_end(e, {"val_acc": a}) for e, a in enumerate([0.5, 0.6, 0.6, 0.59])]
    assert decisions == [False, False, False, True]


def test_early_stopping_resumes_where_it_was():
    first = EarlyStopping(EarlyStoppingConfig(monitor="val_acc", patience=2))
    first.on_epoch_end(0, {"val_acc": 0.7})
    first.on_epoch_end(1, {"val_acc": 0.6})
    resumed = EarlyStopping(EarlyStoppingConfig(monitor="val_acc", patience=2))
    resumed.load_state_dict(first.state_dict())
    assert resumed.on_epoch_end(2, {"val_acc": 0.65}) is True  # the second epoch without gain


def test_best_checkpoint_saves_only_improvements_to_its_path(tmp_path):
    saved = []
    best = BestCheckpoint(
        CheckpointConfig(monitor="val_loss"),
        lambda path, metrics: saved.append((path, metrics["val_loss"])),
        tmp_path / "best.npz",
    )
    for epoch, loss in enumerate([1.0, 0.7, 0.9, 0.6]):
        assert best.on_epoch_end(epoch, {"val_loss": loss}) is False  # it never stops a run
    assert saved == [(tmp_path / "best.npz", 1.0), (tmp_path / "best.npz", 0.7),
                     (tmp_path / "best.npz", 0.6)]  # fmt: skip
    assert best.state_dict() == {"best": 0.6, "best_epoch": 3}
    fresh = BestCheckpoint(CheckpointConfig(monitor="val_loss"), lambda *a: None, tmp_path / "b")
    assert fresh.tracker.best == math.inf
    fresh.load_state_dict(best.state_dict())
    assert fresh.tracker.best == 0.6 and fresh.best_epoch == 3


def test_keep_last_saves_every_epoch_and_still_tracks_the_best(tmp_path):
    saved = []
    last = BestCheckpoint(
        CheckpointConfig(keep="last"),
        lambda path, metrics: saved.append(metrics["val_acc"]),
        tmp_path / "best.npz",
    )
    for epoch, acc in enumerate([0.5, 0.7, 0.6]):
        last.on_epoch_end(epoch, {"val_acc": acc})
    assert saved == [0.5, 0.7, 0.6]  # the file ends as the last epoch's model, 0.6 and all
    assert last.state_dict() == {"best": 0.7, "best_epoch": 2}


def test_make_callbacks_keeps_the_configs_order_and_always_keeps_the_best_and_logs(tmp_path):
    configs = (EarlyStoppingConfig(patience=2), CheckpointConfig(filepath="copy.npz"))
    callbacks, best = make_callbacks(
        configs, lambda *_: None, tmp_path / "best.npz", tmp_path, True
    )
    assert [type(cb) for cb in callbacks] == [EarlyStopping, BestCheckpoint, CsvLogger]
    assert best is callbacks[1] and callbacks[2].path == tmp_path / "metrics.csv"
    own_log = CsvLoggerConfig(filepath=str(tmp_path / "mine.csv"))
    callbacks, best = make_callbacks(
        (own_log,), lambda *_: None, tmp_path / "b.npz", tmp_path, False
    )
    # without a checkpoint callback the run still keeps its best model, by val_acc
    assert [type(cb) for cb in callbacks] == [CsvLogger, BestCheckpoint]
    assert best is callbacks[1] and best.path == tmp_path / "b.npz"
    assert best.cfg.filepath is None and best.tracker.monitor == "val_acc"
    assert callbacks[0].path == tmp_path / "mine.csv"

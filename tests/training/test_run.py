import csv
import json

import numpy as np
import pytest
from helpers import InterruptAt, write_ham

from fcnn import checkpoint, tree
from fcnn.testing import assert_trees_all_close
from fcnn.training.run import TrainingDiverged, TrainingInterrupted, train


def _params(path):
    return checkpoint.build(checkpoint.load(path))[1]


def _quiet(*_):
    return None


def test_run_writes_folder_checkpoints_reports_and_learns(fake_mnist_root, tiny_config, tmp_path):
    best = tmp_path / "ck" / "best.npz"
    cfg = tiny_config(f"callbacks=[{{checkpoint: {{filepath: '{best}', monitor: val_acc}}}}]")
    result = train(cfg, data_dir=fake_mnist_root, echo=_quiet)
    assert result.test_accuracy > 0.9  # the blocks are easy; chance is 0.1
    # the run keeps its own best model; the callback's filepath gets a copy at the end
    assert result.best_checkpoint == result.run_dir / "best.npz" and result.last_checkpoint.exists()
    assert best.read_bytes() == result.best_checkpoint.read_bytes()
    files = {p.name for p in result.run_dir.iterdir()}
    assert {"config.yaml", "log.txt", "metrics.csv", "last.npz", "best.npz", "summary.json",
            "figures"} <= files  # fmt: skip
    rows = list(csv.DictReader((tmp_path / "reports" / "results.csv").open()))
    assert rows[-1]["config"] == "mnist" and float(rows[-1]["test_acc"]) == pytest.approx(
        result.test_accuracy, abs=1e-4
    )
    figures = sorted(p.name for p in (result.run_dir / "figures").iterdir())
    assert figures == ["confusion.png", "curves.png"]
    assert not (tmp_path / "reports" / "figures").exists()
    assert len(list(csv.DictReader((result.run_dir / "metrics.csv").open()))) == 2


def test_same_config_and_seed_give_the_same_numbers(fake_mnist_root, tiny_config):
    a = train(tiny_config("train.epochs=1"), data_dir=fake_mnist_root, echo=_quiet)
    b = train(tiny_config("train.epochs=1"), data_dir=fake_mnist_root, echo=_quiet)
    assert a.run_dir != b.run_dir  # runs never overwrite each other
    assert a.history[0]["train_loss"] == b.history[0]["train_loss"]
    assert_trees_all_close(_params(a.last_checkpoint), _params(b.last_checkpoint), rtol=0)



def test_ctrl_c_saves_last_and_resume_continues_exactly(fake_mnist_root, tiny_config):
    cfg = tiny_config("data.augment.hflip=true", "model_options={}")
    straight = train(cfg, data_dir=fake_mnist_root, echo=_quiet)
    with pytest.raises(TrainingInterrupted) as info:
        train(cfg, data_dir=fake_mnist_root, progress=InterruptAt(1, 3), echo=_quiet)
    saved = checkpoint.load(info.value.path).manifest["training"]["progress"]
    assert (saved["epoch"], saved["batch"]) == (1, 3)
    resumed = train(cfg, data_dir=fake_mnist_root, resume=info.value.path, echo=_quiet)
    assert_trees_all_close(
        _params(resumed.last_checkpoint), _params(straight.last_checkpoint), rtol=0
    )
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in straight.history]


def _group(path, name):
    return checkpoint.load(path).group(name)


def test_weight_average_is_what_a_run_validates_keeps_and_resumes(
    fake_mnist_root, tiny_config, tmp_path
):
    best = tmp_path / "best.npz"
    keep = f"callbacks=[{{checkpoint: {{filepath: '{best}', monitor: val_acc}}}}]"
    one = train(
        tiny_config("train.epochs=1", "train.ema_decay=0.9", keep),
        data_dir=fake_mnist_root,
        echo=_quiet,
    )
    # the kept model is the average, not the last step's weights
    assert_trees_all_close(
        _group(one.best_checkpoint, "params"), _group(one.last_checkpoint, "ema_params"), rtol=0
    )
    assert not tree.allclose(
        _group(one.last_checkpoint, "ema_params"), _group(one.last_checkpoint, "params")
    )
    # Ctrl-C mid-epoch and resume: the same average as a run straight through
    cfg = tiny_config("train.ema_decay=0.9")
    straight = train(cfg, data_dir=fake_mnist_root, echo=_quiet)
    with pytest.raises(TrainingInterrupted) as info:
        train(cfg, data_dir=fake_mnist_root, progress=InterruptAt(1, 3), echo=_quiet)
    resumed = train(cfg, data_dir=fake_mnist_root, resume=info.value.path, echo=_quiet)
    for group in ("ema_params", "params"):
        assert_trees_all_close(
            _group(resumed.last_checkpoint, group), _group(straight.last_checkpoint, group), rtol=0
        )
    assert [h["val_acc"] for h in resumed.history] == [h["val_acc"] for h in straight.history]


def test_keep_last_keeps_and_tests_the_last_epochs_model(fake_mnist_root, tiny_config):
    # monitoring the *highest* val_loss, keep: best holds on to epoch 1; keep: last must not
    worst = "monitor: val_loss, mode: max"
    runs = {}
    for keep in ("best", "last"):
        lines = []
        cfg = tiny_config(f"callbacks=[{{checkpoint: {{{worst}, keep: {keep}}}}}]")
        runs[keep] = train(cfg, data_dir=fake_mnist_root, echo=lines.append), lines
    (best, _), (last, lines) = runs["best"], runs["last"]
    def kept_loss(run):
        return checkpoint.load(run.best_checkpoint).info.metrics["val_loss"]

    first, final = (h["val_loss"] for h in (last.history[0], last.history[-1]))
    assert first != final and kept_loss(best) == first and kept_loss(last) == final
    assert_trees_all_close(_params(last.best_checkpoint), _params(last.last_checkpoint), rtol=0)
    assert any("(last epoch)" in line for line in lines)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(
    fake_mnist_root, tiny_config, tmp_path, monkeypatch
):
    import fcnn.training.run as run_module

    calls = {"n": 0}
    real_step = run_module.train_step

    def step_that_diverges_in_epoch_two(*args):
        calls["n"] += 1
        out = real_step(*args)
        return out._replace(loss=float("nan")) if calls["n"] > 12 else out  # 9 batches/epoch

    monkeypatch.setattr(run_module, "train_step", step_that_diverges_in_epoch_two)
    best = tmp_path / "best.npz"
    cfg = tiny_config(f"callbacks=[{{checkpoint: {{filepath: '{best}'}}}}]")
    with pytest.raises(TrainingDiverged, match="the loss became nan at epoch 2, batch 4") as info:
        train(cfg, data_dir=fake_mnist_root, echo=_quiet)
    assert "best.npz" in str(info.value) and "last.npz" in str(info.value)
    run_dir = next((tmp_path / "runs").iterdir())
    last = run_dir / "last.npz"
    assert checkpoint.load(last).manifest["training"]["progress"]["epoch"] == 1
    good = _params(last)
    assert all(np.all(np.isfinite(leaf)) for leaf in tree.leaves(good))
    assert_trees_all_close(_params(run_dir / "best.npz"), good, rtol=0)  # epoch 1's params
    assert not best.exists()  # the copy is made only when a run finishes


def test_resuming_from_a_best_checkpoint_is_refused(fake_mnist_root, tiny_config, tmp_path):
    best = tmp_path / "best.npz"
    cfg = tiny_config("train.epochs=1", f"callbacks=[{{checkpoint: {{filepath: '{best}'}}}}]")
    train(cfg, data_dir=fake_mnist_root, echo=_quiet)
    with pytest.raises(checkpoint.CheckpointError, match="not resumable"):
        train(cfg, data_dir=fake_mnist_root, resume=best, echo=_quiet)


def test_early_stopping_stops(fake_mnist_root, tiny_config):
    cfg = tiny_config(
        "train.epochs=6",
        "train.lr=1.0e-9",
        "callbacks=[{early_stopping: {monitor: val_loss, patience: 1, min_delta: 1}}]",
    )
    result = train(cfg, data_dir=fake_mnist_root, echo=_quiet)
    assert result.stopped_early and len(result.history) == 2


@pytest.mark.data
def test_short_real_mnist_run_learns_well_above_chance(real_data_root, tiny_config):
    cfg = tiny_config(
        "data.limit_train=3000", "data.limit_test=1000", "train.epochs=3", "train.lr=0.02"
    )
    result = train(cfg, data_dir=real_data_root, echo=_quiet)
    assert result.test_accuracy > 0.85
    assert np.isfinite(result.history[-1]["val_loss"])


def _one_epoch_to_best(root, tiny_config, tmp_path, *overrides):
    """Train one epoch of ``tiny_config(*overrides)`` on ``root`` with the best checkpoint
    kept at ``tmp_path / 'best.npz'``; returns that path and the run's log lines."""
    best = tmp_path / "best.npz"
    cfg = tiny_config(
        "train.epochs=1", *overrides, f"callbacks=[{{checkpoint: {{filepath: '{best}'}}}}]"
    )
    lines = []
    train(cfg, data_dir=root, echo=lines.append)
    return best, lines


def test_calibration_is_fitted_on_validation_and_applied_by_load(
    fake_mnist_root, tiny_config, tmp_path
):
    from fcnn import calibration
    from fcnn.inference import load
    from fcnn.training.data import prepare_data
    from fcnn.training.loop import evaluate

    best, _ = _one_epoch_to_best(fake_mnist_root, tiny_config, tmp_path, "calibration=vector")
    stored = checkpoint.load(best).manifest["calibration"]
    # what calibration.fit gives for "vector" on this model's own validation logits (vector
    # scaling, or temperature when vector does not lower the NLL): fitted as asked, on val
    cfg = tiny_config("train.epochs=1")
    data = prepare_data(cfg, fake_mnist_root)
    net, params, state = checkpoint.build(checkpoint.load(best))
    val = evaluate(
        net, params, state, data.val.images, data.val.labels, data.normalization,
        cfg.train.eval_batch_size,
    )  # fmt: skip
    assert stored == calibration.fit(val.logits, val.labels, "vector").to_dict()
    model = load(best)
    images = np.zeros((2, 1, 28, 28), np.uint8)
    raw = model.raw_logits(images)
    np.testing.assert_allclose(model.logits(images), model.calibration.apply(raw))
    assert not np.allclose(model.logits(images), raw)


def test_decision_rule_is_fitted_stored_and_used_by_load(fake_mnist_root, tiny_config, tmp_path):
    from fcnn.inference import load

    best, lines = _one_epoch_to_best(
        fake_mnist_root,
        tiny_config,
        tmp_path,
        "calibration=temperature",
        "decision={rule: prior_corrected, min_accuracy: 0.0}",
    )
    assert any(line.startswith("decision rule (prior exponent") for line in lines)
    stored = checkpoint.load(best).manifest["decision"]
    model = load(best)
    assert model.decision.alpha == stored["alpha"]
    assert len(model.decision.weights) in (0, 10)
    images = np.random.default_rng(0).integers(0, 255, (5, 1, 28, 28)).astype(np.uint8)
    np.testing.assert_array_equal(
        model.classify(images), model.decision.decide(model.predict(images))
    )


def test_screening_operating_point_is_fitted_on_validation_and_stored(
    fake_mnist_root, tiny_config, tmp_path
):
    from fcnn.inference import load

    best, lines = _one_epoch_to_best(
        fake_mnist_root,
        tiny_config,
        tmp_path,
        "calibration=temperature",
        "answer_rules={uncertain_below: 0.2, high_risk_classes: ['3', '7'], high_risk_at: 0.5}",
        "screening_sensitivity=0.9",
    )
    (line,) = [line for line in lines if line.startswith("screening operating point")]
    rules = load(best).answer_rules
    assert rules.uncertain_below == 0.2 and rules.high_risk_classes == ("3", "7")
    assert rules.high_risk_at != 0.5 and f"high_risk_at={rules.high_risk_at:.4f}" in line
    flagged = float(line.split("flagged high ")[1].split(" ")[0])
    assert flagged >= 0.9


def test_uncertain_threshold_is_fitted_on_validation_within_the_share(
    fake_mnist_root, tiny_config, tmp_path
):
    from fcnn.inference import load
    from fcnn.training.data import prepare_data

    best, lines = _one_epoch_to_best(
        fake_mnist_root,
        tiny_config,
        tmp_path,
        "calibration=temperature",
        "answer_rules={uncertain_below: 0.2, high_risk_classes: ['3'], high_risk_at: 0.5}",
        "uncertain_share=0.1",
    )
    (line,) = [line for line in lines if line.startswith("uncertain threshold")]
    model = load(best)
    rules = model.answer_rules
    assert rules.high_risk_at == 0.5 and f"uncertain_below={rules.uncertain_below:.4f}" in line
    # the stored threshold, applied to the validation images, abstains on at most 10 %
    val = prepare_data(tiny_config(), fake_mnist_root).val  # the split depends on data and seed
    top = model.predict(val.images).max(axis=1)
    assert np.mean(top < rules.uncertain_below) <= 0.1


def test_a_screening_sensitivity_without_high_risk_classes_is_a_clear_error(
    fake_mnist_root, tiny_config
):
    cfg = tiny_config("train.epochs=1", "screening_sensitivity=0.9")
    with pytest.raises(ValueError, match="needs an answer_rules section naming high_risk_classes"):
        train(cfg, data_dir=fake_mnist_root, echo=_quiet)


def test_a_recall_floor_on_an_unknown_class_is_a_clear_error(fake_mnist_root, tiny_config):
    cfg = tiny_config(
        "train.epochs=1",
        "calibration=temperature",
        "decision={rule: prior_corrected, min_recall: {mel: 0.6}}",
    )
    with pytest.raises(ValueError, match=r"min_recall names \['mel'\], which are not classes"):
        train(cfg, data_dir=fake_mnist_root, echo=_quiet)


def test_a_model_input_size_other_than_the_datas_names_the_keys_to_change(tmp_path, tiny_config):
    write_ham(tmp_path)
    cfg = tiny_config(
        "dataset=ham10000",
        "model=dermascan_cnn",
        "data.image_size=[32, 32]",
        "data.val_fraction=0.3",  # a validation split of the tiny folder's 5 lesions a class
    )
    with pytest.raises(ValueError) as err:
        train(cfg, data_dir=tmp_path, echo=_quiet)
    message = str(err.value)
    assert "expects images of shape (3, 64, 64) but ham10000 has (3, 32, 32)" in message
    assert "model_options: {image_size: 32} or data.image_size: [64, 64]" in message


def test_a_model_for_other_channels_is_not_offered_an_image_size(fake_mnist_root, tiny_config):
    with pytest.raises(ValueError) as err:
        train(tiny_config("model=dermascan_cnn"), data_dir=fake_mnist_root, echo=_quiet)
    assert "expects images of shape (3, 64, 64) but mnist has (1, 28, 28)" in str(err.value)
    assert "set " not in str(err.value)


def test_loop_progress_round_trips_through_its_one_pair_and_refuses_bad_numbers():
    from fcnn.checkpoint import CheckpointError
    from fcnn.training.setup import PROGRESS, LoopState

    loop = LoopState(params=(), state=(), opt_state=(), epoch=3, batch=7, loss_sum=1.5,
                     correct=40, seen=64)  # fmt: skip
    saved = json.loads(json.dumps(loop.progress()))  # as last.npz's manifest holds it
    back = LoopState(params=(), state=(), opt_state=()).resumed(saved)
    assert back.progress() == loop.progress() and tuple(saved) == PROGRESS
    bad_ones = [
        {**saved, "epoch": -1},
        {**saved, "seen": 1.5},
        {**saved, "extra": 0},
        {k: v for k, v in saved.items() if k != "batch"},
        {**saved, "loss_sum": "x"},
    ]
    for bad in bad_ones:
        with pytest.raises(CheckpointError, match="training progress"):
            back.resumed(bad)
    with pytest.raises(TypeError):
        LoopState((), (), ())  # by keyword only

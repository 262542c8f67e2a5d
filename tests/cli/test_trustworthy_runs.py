"""The files around a run tell the truth, tried through the CLI as a user would: each run
keeps its own best model, resume and evaluate cannot mix runs or configs up, a damaged
checkpoint is one clear line, a fresh clone's tracked files stay untouched."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def _train(root, tmp_path, *sets, resume=None, config="configs/mnist.yaml"):
    args = ["train"] + ([config] if config else [])
    args += ["--procs", "1", "--data-dir", str(root), "--no-progress"]
    if resume is not None:
        args += ["--resume", str(resume)]
    for item in sets:
        args += ["--set", item]
    return runner.invoke(app, args)


def _base(tmp_path, best):
    return [
        f"runs_dir={tmp_path / 'runs'}",
        "train.epochs=2",
        "train.batch_size=64",
        f"callbacks=[{{checkpoint: {{filepath: '{best}', monitor: val_acc}}}}]",
    ]


def _runs(tmp_path) -> list[Path]:
    return sorted(p for p in (tmp_path / "runs").iterdir() if p.is_dir())


@pytest.fixture
def two_runs(fake_mnist_root, tmp_path):
    """Run A learns; run B (same folder, same checkpoint filepath) does not."""
    best = tmp_path / "checkpoints" / "lenet_mnist_best.npz"
    a = _train(fake_mnist_root, tmp_path, *_base(tmp_path, best))
    assert a.exit_code == 0, a.output
    run_a = _runs(tmp_path)[0]
    b = _train(fake_mnist_root, tmp_path, *_base(tmp_path, best), "train.lr=1.0e-9", "seed=5")
    assert b.exit_code == 0, b.output
    run_b = next(p for p in _runs(tmp_path) if p != run_a)
    return fake_mnist_root, best, run_a, run_b


def test_each_run_keeps_its_own_best_model_and_resume_reads_it(two_runs, tmp_path):
    root, best, run_a, run_b = two_runs
    summary_a = json.loads((run_a / "summary.json").read_text())
    assert summary_a["best_checkpoint"] == str(run_a / "best.npz")
    assert summary_a["test_acc"] > 0.9
    # B (same config, worse val_acc) kept A's convenience copy, and said so
    assert best.read_bytes() == (run_a / "best.npz").read_bytes()
    log_b = (run_b / "log.txt").read_text()
    assert f"kept {best}: it holds a model of the same config with val_acc" in log_b
    assert "fcnn train --force replaces it" in log_b
    # resuming A (one more epoch) evaluates A's own best model, not the shared file
    resumed = _train(root, tmp_path, resume=run_a / "last.npz", config=None)
    assert resumed.exit_code == 0, resumed.output
    again = json.loads((run_a / "summary.json").read_text())
    # B's model scores about 0.1: a test accuracy above 0.9 is A's own
    assert again["test_acc"] > 0.9 and again["best_checkpoint"] == str(run_a / "best.npz")
    rows = list(csv.DictReader((tmp_path / "runs" / "results.csv").open()))
    # the resumed run's row replaced its first one: one row a run, with its overrides
    assert [float(r["test_acc"]) > 0.9 for r in rows if r["run_dir"] == str(run_a)] == [True]
    assert len(rows) == 2 and "train.epochs=2" in rows[0]["overrides"]


def test_force_lets_a_worse_run_replace_the_copy(fake_mnist_root, tmp_path, two_runs):
    root, best, run_a, _ = two_runs
    worse = [*_base(tmp_path, best), "train.lr=1.0e-9", "seed=6"]
    result = runner.invoke(
        app,
        ["train", "configs/mnist.yaml", "--procs", "1", "--data-dir", str(root),
         "--no-progress", "--force", *[x for item in worse for x in ("--set", item)]],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    run_c = _runs(tmp_path)[-1]
    assert best.read_bytes() == (run_c / "best.npz").read_bytes()
    assert "replaced the file there" in (run_c / "log.txt").read_text()


def test_a_moved_run_folder_resumes_where_it_is(two_runs, tmp_path):
    root, _, run_a, _ = two_runs
    moved = tmp_path / "elsewhere" / "run-a"
    moved.parent.mkdir()
    run_a.rename(moved)
    result = _train(root, tmp_path, "train.epochs=3", resume=moved / "last.npz", config=None)
    assert result.exit_code == 0, result.output
    assert "epoch 3/3" in result.output
    assert json.loads((moved / "summary.json").read_text())["best_checkpoint"] == str(
        moved / "best.npz"
    )
    assert not run_a.exists()


def test_resume_refuses_another_config_and_names_the_keys(two_runs, tmp_path):
    root, _, run_a, _ = two_runs
    last = run_a / "last.npz"
    other = _train(
        root, tmp_path, "model=tiny_vgg_cifar", resume=last, config="configs/cifar10_tiny_vgg.yaml"
    )
    assert other.exit_code == 2 and "Traceback" not in other.output
    assert "dataset" in other.output and "model" in other.output
    lr = _train(root, tmp_path, "train.lr=0.5", resume=last, config=None)
    assert lr.exit_code == 2 and "train.lr" in lr.output
    fewer = _train(root, tmp_path, "train.epochs=1", resume=last, config=None)
    assert fewer.exit_code == 2 and "fewer than the 2 epochs" in fewer.output


def test_a_finished_run_can_be_extended(two_runs, tmp_path):
    root, _, run_a, _ = two_runs
    result = _train(root, tmp_path, "train.epochs=3", resume=run_a / "last.npz", config=None)
    assert result.exit_code == 0, result.output
    assert "epoch 3/3" in result.output and "rebuilt for 3 epochs" in result.output
    metrics = (run_a / "metrics.csv").read_text().splitlines()
    assert len(metrics) == 1 + 3  # header and three epochs
    assert "epochs: 3" in (run_a / "config.yaml").read_text()


@pytest.mark.parametrize("command", ["predict", "evaluate", "export", "calibrate", "resume"])
@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_checkpoint_is_one_line(tmp_path, command, damage):
    data = (REPO / "webapp" / "model" / "dermascan.npz").read_bytes()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(
        {"truncated": data[: len(data) // 2], "garbage": b"x" * 999, "empty": b""}[damage]
    )
    image = tmp_path / "x.png"
    from PIL import Image

    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)
    args = {
        "predict": ["predict", "--weights", str(bad), str(image)],
        "evaluate": ["evaluate", "--weights", str(bad)],
        "export": ["export", "--weights", str(bad), "--out", str(tmp_path / "out")],
        "calibrate": ["calibrate", "--weights", str(bad)],
        "resume": ["train", "--resume", str(bad), "--procs", "1"],
    }[command]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and str(bad) in result.output
    assert {"truncated": "truncated", "garbage": "not a checkpoint", "empty": "empty"}[damage] in (
        result.output
    )
    assert len(result.output.strip().splitlines()) <= 3  # one message (wrapped at most)


def test_evaluate_val_uses_the_models_own_splits(fake_mnist_root, tmp_path):
    best = tmp_path / "best.npz"
    trained = _train(fake_mnist_root, tmp_path, *_base(tmp_path, best), "data.limit_train=300")
    assert trained.exit_code == 0, trained.output
    own = runner.invoke(
        app,
        ["evaluate", "--weights", str(best), "--split", "val", "--data-dir", str(fake_mnist_root),
         "--json", "--figures", str(tmp_path / "f")],
    )  # fmt: skip
    assert own.exit_code == 0, own.output
    assert json.loads(own.output)["n"] == 30  # 10 % of the 300 training images
    mixed = runner.invoke(
        app,
        ["evaluate", "configs/mnist.yaml", "--weights", str(best), "--split", "val",
         "--data-dir", str(fake_mnist_root)],
    )  # fmt: skip
    assert mixed.exit_code == 2 and "data.limit_train" in mixed.output
    cal = runner.invoke(
        app,
        ["calibrate", "configs/mnist.yaml", "--weights", str(best),
         "--data-dir", str(fake_mnist_root)],
    )  # fmt: skip
    assert cal.exit_code == 2 and "data.limit_train" in cal.output
    run_best = _runs(tmp_path)[0] / "best.npz"
    beside = runner.invoke(
        app, ["evaluate", "--weights", str(run_best), "--data-dir", str(fake_mnist_root)]
    )  # no --figures: they go into the run's own folder, named in the output
    assert beside.exit_code == 0, beside.output
    figures = run_best.parent / "evaluation-best-test"
    assert sorted(p.name for p in figures.iterdir()) == ["confusion.png", "reliability.png"]
    assert str(figures / "confusion.png") in beside.output.replace("\n", "")


def test_export_refuses_to_replace_a_file_unless_forced_and_writes_onnx(two_runs, tmp_path):
    _, best, run_a, _ = two_runs
    weights = run_a / "best.npz"
    out = tmp_path / "model.onnx"
    out.write_text("keep me")
    refused = runner.invoke(
        app, ["export", "--weights", str(weights), "--out", str(out), "--format", "onnx"]
    )
    assert refused.exit_code == 2 and "--force" in refused.output
    assert out.read_text() == "keep me"
    forced = runner.invoke(
        app, ["export", "--weights", str(weights), "--out", str(out), "--format", "onnx", "--force"]
    )
    assert forced.exit_code == 0, forced.output
    assert out.read_bytes()[:2] != b"ke"  # replaced by the graph


def test_export_replaces_a_folder_whole_only_when_forced(two_runs, tmp_path):
    _, best, run_a, _ = two_runs
    weights = run_a / "best.npz"
    folder = tmp_path / "exported"
    folder.mkdir()
    (folder / "old.txt").write_text("x")
    kept = runner.invoke(app, ["export", "--weights", str(weights), "--out", str(folder)])
    assert kept.exit_code == 2 and (folder / "old.txt").read_text() == "x"
    done = runner.invoke(
        app, ["export", "--weights", str(weights), "--out", str(folder), "--force"]
    )
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "weights.npz"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers
    from fcnn.inference import load

    pixels = np.random.default_rng(0).integers(0, 256, (4, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(load(folder).predict(pixels), load(weights).predict(pixels))


def test_a_fresh_clones_tracked_files_stay_untouched(fake_mnist_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a checkout's root: configs/ and a tracked reports/
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "mnist.yaml").write_text((REPO / "configs" / "mnist.yaml").read_text())
    (tmp_path / "reports" / "figures").mkdir(parents=True)
    result = _train(fake_mnist_root, tmp_path, "train.epochs=1", "train.batch_size=64")
    assert result.exit_code == 0, result.output
    assert list((tmp_path / "reports" / "figures").iterdir()) == []
    assert not (tmp_path / "reports" / "results.csv").exists()
    run = _runs(tmp_path)[0]
    assert (tmp_path / "runs" / "results.csv").exists() and (
        run / "figures" / "curves.png"
    ).exists()
    said = result.output.replace("\n", "")
    for written in ("summary.json", "results.csv", "curves.png", "confusion.png"):
        assert written in said


@pytest.fixture(scope="module")
def shipped():
    from fcnn.inference import load

    return load(REPO / "webapp" / "model" / "dermascan.npz")


class TestModelPredictChecksItsInput:
    def test_images_scaled_to_one_are_refused_unless_scaled(self, shipped):
        model = shipped
        pixels = np.random.default_rng(0).integers(0, 256, (2, *model.input_shape))
        unit = pixels.astype(np.float32) / 255
        with pytest.raises(ValueError, match="0..255 pixels"):
            model.predict(unit)
        np.testing.assert_allclose(model.predict(unit, scale=255), model.predict(pixels), atol=1e-5)
        model.predict(np.zeros((1, *model.input_shape), np.float32))  # all black is fine

    @pytest.mark.parametrize(
        ("make", "words"),
        [
            (lambda s: np.full((1, *s), np.nan, np.float32), "NaN"),
            (lambda s: np.zeros((0, *s), np.uint8), "empty"),
            (lambda s: np.zeros((16, *s[1:]), np.uint8), "(N, 3, 64, 64), got (16, 64, 64)"),
            (lambda s: np.full((1, *s), 300.0, np.float32), "0..255"),
            (lambda s: np.full((1, *s), -1.0, np.float32), "0..255"),
        ],
    )
    def test_bad_batches_say_what_is_wrong(self, shipped, make, words):
        with pytest.raises(ValueError) as err:
            shipped.predict(make(shipped.input_shape))
        assert words in str(err.value)


def test_a_one_channel_batch_without_its_channel_axis_gets_a_hint(two_runs):
    from fcnn.inference import load

    _, _, run_a, _ = two_runs
    with pytest.raises(
        ValueError, match=r"\(N, 1, 28, 28\), got \(16, 28, 28\).*images\[:, None\]"
    ):
        load(run_a / "best.npz").predict(np.zeros((16, 28, 28), np.uint8))


def test_checkpoint_load_leaves_no_file_open(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    code = (
        "import warnings, sys; warnings.simplefilter('error'); from fcnn import checkpoint\n"
        f"try: checkpoint.load({str(bad)!r})\n"
        "except checkpoint.CheckpointError as e: print('ok', e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", code], capture_output=True, text=True, cwd=REPO
    )
    assert done.stdout.startswith("ok") and "ResourceWarning" not in done.stderr, done.stderr


def _with_manifest(path, change):
    """Rewrite the checkpoint at ``path`` with ``change(manifest)`` applied (a crafted file)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    manifest = json.loads(str(arrays["__manifest__"]))
    change(manifest)
    arrays["__manifest__"] = np.array(json.dumps(manifest))
    np.savez(path, **arrays)


def test_a_crafted_last_npz_cannot_make_a_resumed_run_write_elsewhere(two_runs, tmp_path):
    root, _, run_a, _ = two_runs
    elsewhere = tmp_path / "some" / "where"
    elsewhere.mkdir(parents=True)
    precious = elsewhere / "precious.npz"
    precious.write_bytes(b"keep me")

    def aim_elsewhere(manifest):
        manifest["config"]["callbacks"] = [
            {"csv_logger": {"filepath": str(elsewhere / "notes.txt")}},
            {"checkpoint": {"filepath": str(precious), "monitor": "val_acc", "mode": "max"}},
        ]
        manifest["config"]["reports_dir"] = str(elsewhere)
        manifest["training"]["callbacks"] = [{}, {"best": 0.0, "best_epoch": None}]

    _with_manifest(run_a / "last.npz", aim_elsewhere)
    result = _train(root, tmp_path, "train.epochs=3", resume=run_a / "last.npz", config=None)
    assert result.exit_code == 0, result.output
    assert precious.read_bytes() == b"keep me"  # not replaced
    assert sorted(p.name for p in elsewhere.iterdir()) == ["precious.npz"]  # nothing added
    for key, path in [
        ("callbacks[0].filepath", elsewhere / "notes.txt"),
        ("callbacks[1].filepath", precious),
        ("reports_dir", elsewhere),
    ]:
        assert f"not writing {key} {path}" in result.output
    assert (run_a / "metrics.csv").is_file() and (tmp_path / "runs" / "results.csv").is_file()


def test_a_malformed_callback_state_in_last_npz_is_one_line(two_runs, tmp_path):
    root, _, run_a, _ = two_runs

    def break_state(manifest):
        manifest["training"]["callbacks"][0] = {"bset": 1}

    _with_manifest(run_a / "last.npz", break_state)
    result = _train(root, tmp_path, resume=run_a / "last.npz", config=None)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "the saved state of callback 0 (BestCheckpoint) is malformed" in result.output


def test_a_last_npz_with_another_count_of_callback_states_is_refused(two_runs, tmp_path):
    root, _, run_a, _ = two_runs

    def drop_one(manifest):
        manifest["training"]["callbacks"] = manifest["training"]["callbacks"][:1]

    _with_manifest(run_a / "last.npz", drop_one)
    result = _train(root, tmp_path, resume=run_a / "last.npz", config=None)
    assert result.exit_code == 2 and "holds the state of 1 callbacks" in result.output

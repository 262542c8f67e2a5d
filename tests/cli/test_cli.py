import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cli.main import app
from fcnn.version import __version__

runner = CliRunner()


def test_version_and_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    for command in ("train", "evaluate", "export", "predict"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


def test_bad_config_is_one_clear_line_not_a_traceback(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "dataset: mnist\nmodel: lenet_mnist\ntrain: {epochs: 1, lr: 0.1, optimiser: sgd}\n"
    )
    result = runner.invoke(app, ["train", str(cfg)])
    assert result.exit_code == 2
    assert "unknown key train.optimiser" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["train", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_missing_data_says_where_to_put_it(tmp_path, monkeypatch):
    from fcnn.data import mnist

    monkeypatch.setattr(mnist, "MIRRORS", ("http://127.0.0.1:9/",))  # a closed port
    result = runner.invoke(
        app,
        [
            "train",
            "configs/mnist.yaml",
            "--procs",
            "1",  # the download is patched in this process only
            "--data-dir",
            str(tmp_path),
            "--set",
            f"runs_dir={tmp_path}/runs",
        ],
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "could not download" in result.output and "Put the four files" in result.output


@pytest.fixture
def trained(fake_mnist_root, tmp_path):
    best = tmp_path / "best.npz"
    args = [
        "train",
        "configs/mnist.yaml",
        "--procs",
        "1",  # the fake data's checksums are patched in this process only
        "--data-dir",
        str(fake_mnist_root),
        "--no-progress",
        "--set",
        f"runs_dir={tmp_path}/runs",
        "--set",
        f"reports_dir={tmp_path}/reports",
        "--set",
        "train.epochs=2",
        "--set",
        "train.batch_size=64",
        "--set",
        f"callbacks=[{{checkpoint: {{filepath: '{best}'}}}}]",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output and "epoch 2/2" in result.output
    return fake_mnist_root, best


def test_evaluate_table_and_json(trained, tmp_path):
    root, best = trained
    figures = tmp_path / "figures"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "configs/mnist.yaml",
            "--weights",
            str(best),
            "--data-dir",
            str(root),
            "--json",
            "--figures",
            str(figures),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n"] == 200 and report["accuracy"] > 0.9
    assert len(report["per_class"]) == 10 and np.array(report["confusion_matrix"]).sum() == 200
    table = runner.invoke(
        app,
        ["evaluate", "--weights", str(best), "--data-dir", str(root), "--figures", str(figures)],
    )  # CONFIG left out: the checkpoint's own config decides
    assert table.exit_code == 0 and "precision" in table.output and "confusion" in table.output
    # the line naming the files is never broken by the console (soft wrap), whatever the
    # terminal's width and the length of the temporary folder's name: paths stay copyable
    assert f"{figures / 'confusion.png'} (replaced)" in table.output


def test_export_loads_back_without_the_config_and_predicts(trained, tmp_path):
    _, best = trained
    out = tmp_path / "exported"
    result = runner.invoke(
        app, ["export", "configs/mnist.yaml", "--weights", str(best), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "model.json").read_text())["architecture"]["type"] == "serial"
    img = np.full((28, 28), 30, np.uint8)
    img[14:24, 7:11] = 250  # the block of class 6 in the fake data
    Image.fromarray(img).save(tmp_path / "six.png")
    for weights in (best, out):
        result = runner.invoke(
            app,
            [
                "predict",
                "--weights",
                str(weights),
                str(tmp_path / "six.png"),
                "--json",
                "--top-k",
                "2",
            ],
        )
        assert result.exit_code == 0, result.output
        answer = json.loads(result.output)[0]
        # the API's keys: top is the model's answer, predictions the classes by probability
        assert answer["top"]["code"] == "6" and answer["predictions"][0]["code"] == "6"
        assert len(answer["predictions"]) == 2 and answer["risk_level"] is None
        assert answer["uncertain"] is False


def test_export_refuses_a_mismatched_config(trained, tmp_path):
    _, best = trained
    result = runner.invoke(
        app,
        [
            "export",
            "configs/cifar10_tiny_vgg.yaml",
            "--weights",
            str(best),
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert result.exit_code == 2 and "trained with another config" in result.output
    assert "dataset" in result.output and "Traceback" not in result.output


def test_predict_on_a_non_image_is_an_error(trained, tmp_path):
    _, best = trained
    (tmp_path / "notes.txt").write_text("hello")
    result = runner.invoke(app, ["predict", "--weights", str(best), str(tmp_path / "notes.txt")])
    assert result.exit_code == 2 and "unreadable image" in result.output


def test_ham_pipeline_train_calibrate_evaluate_with_figures_and_subgroups(tmp_path):
    from helpers import write_ham

    write_ham(tmp_path / "data", per_class=12)
    best = tmp_path / "derma.npz"
    common = [
        "--set",
        "data.image_size=[16, 16]",
        "--set",
        "model_options={widths: [8, 8], image_size: 16}",
    ]
    args = [
        "train",
        "configs/dermascan.yaml",
        "--procs",
        "1",
        "--data-dir",
        str(tmp_path / "data"),
        "--no-progress",
        "--set",
        f"runs_dir={tmp_path}/runs",
        "--set",
        f"reports_dir={tmp_path}/reports",
        "--set",
        "train.epochs=8",
        "--set",
        "train.batch_size=16",
        "--set",
        "train.lr=0.01",
        "--set",
        f"callbacks=[{{checkpoint: {{filepath: '{best}', monitor: val_balanced_acc}}}}]",
        *common,
    ]
    result = runner.invoke(app, [*args, "--set", "ood_quantile=0.95"])
    assert result.exit_code == 0, result.output
    assert "skipped 2 rows" in result.output and "calibration (" in result.output
    assert "out-of-distribution detector" in result.output
    from fcnn.inference import load

    model = load(best)
    blank = np.full((1, 3, 16, 16), 200, np.uint8)
    assert model.unfamiliar(blank) == ["not_skin"]
    figures = tmp_path / "figs"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "configs/dermascan.yaml",
            "--weights",
            str(best),
            "--data-dir",
            str(tmp_path / "data"),
            "--json",
            "--figures",
            str(figures),
            "--markdown",
            str(tmp_path / "m.md"),
            *common,
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["class_names"] == ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
    assert {"ece", "ece_uncalibrated", "macro_auc", "balanced_accuracy"} <= set(report)
    assert set(report["subgroups"]) == {"sex", "age_band", "body_site"}
    assert report["accuracy"] > 0.5  # colours encode the classes
    md = (tmp_path / "m.md").read_text()
    assert "| balanced accuracy (mean recall) |" in md and "| age band |" in md
    result = runner.invoke(
        app,
        [
            "calibrate",
            "configs/dermascan.yaml",
            "--weights",
            str(best),
            "--data-dir",
            str(tmp_path / "data"),
            "--method",
            "temperature",
            *common,
        ],
    )
    assert result.exit_code == 0, result.output
    from fcnn import checkpoint

    manifest = checkpoint.load(best).manifest
    assert manifest["calibration"]["method"] == "temperature" and "ood" in manifest  # kept
    rules_after_training = manifest["answer_rules"]  # fitted at the end of training, kept
    assert rules_after_training["high_risk_at"] != 0.3
    assert load(best).unfamiliar(blank) == ["not_skin"]  # the detector's arrays were kept too
    assert sorted(p.name for p in figures.iterdir()) == [
        "confusion.png",
        "reliability.png",
    ]
    # refitting the detector replaces the stored one (a regression: it used to crash)
    before = manifest["ood"]
    result = runner.invoke(
        app,
        [
            "calibrate", "configs/dermascan.yaml", "--weights", str(best),
            "--data-dir", str(tmp_path / "data"), "--method", "vector",
            "--ood-quantile", "0.6", "--screening-sensitivity", "1.0", *common,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "decision rule (prior exponent" in result.output  # the config asks for one
    assert "lesions flagged high 1.000 (asked 1.0)" in result.output
    manifest = checkpoint.load(best).manifest
    assert manifest["ood"] != before and manifest["decision"]["alpha"] >= 0.0
    # the training run fitted the flag for 0.9 (configs/dermascan.yaml); this one for 1.0
    assert manifest["answer_rules"]["high_risk_at"] != rules_after_training["high_risk_at"]
    # fitting only the uncertain threshold keeps the fitted flag (not the config's 0.3)
    screening = manifest["answer_rules"]["high_risk_at"]
    result = runner.invoke(
        app,
        [
            "calibrate", "--weights", str(best), "--data-dir", str(tmp_path / "data"),
            "--method", "vector", "--uncertain-share", "0.1", *common,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "uncertain threshold uncertain_below=" in result.output
    rules = checkpoint.load(best).manifest["answer_rules"]
    assert rules["high_risk_at"] == screening and rules["uncertain_below"] != 0.35

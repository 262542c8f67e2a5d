"""A user's own network and data through the CLI, as docs/how-to/own-data.md shows them: a network
written as a layer spec, an image folder, an arrays file, plugins that register presets and
data sets, a script's model saved with fcnn.save, and the rough edges met on the way."""

from __future__ import annotations

import json
import os
import stat
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import fcnn
from cli.main import app
from fcnn import checkpoint, models
from fcnn import random as fr

runner = CliRunner()

SPEC = """\
type: serial
layers:
  - {type: Conv2D, out_channels: 4, kernel_size: 3, padding: 1}
  - {type: ReLU}
  - {type: MaxPool2D, window: 2}
  - {type: Flatten}
  - {type: Dense, out_features: 3}
"""
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def _image_folder(root, per_class=16, formats=("png", "jpeg", "webp")):
    """root/train/<colour>/*: 12x12 images of one colour and noise, in three formats."""
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        folder = root / "train" / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            arr = np.clip(rng.normal(colour, 20, (12, 12, 3)), 0, 255).astype(np.uint8)
            fmt = formats[i % len(formats)]
            Image.fromarray(arr).save(folder / f"{i}.{fmt.replace('jpeg', 'jpg')}", format=fmt)
    return root


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def flowers(tmp_path):
    """The docs' example (docs/how-to/own-data.md): a config beside its spec file and its
    image folder."""
    _image_folder(tmp_path / "flowers")
    (tmp_path / "net.yaml").write_text(SPEC)
    (tmp_path / "flowers.yaml").write_text(
        "dataset: imagefolder\n"
        "data: {root: flowers, val_fraction: 0.25}\n"
        "model: net.yaml\n"
        "train: {epochs: 4, lr: 0.05, batch_size: 8, optimizer: sgd, momentum: 0.9}\n"
        "runs_dir: runs\n"
    )
    return tmp_path


def test_a_custom_net_on_an_image_folder_trains_predicts_evaluates_and_exports(
    flowers, monkeypatch
):
    monkeypatch.chdir(flowers / "flowers")  # the config's paths are relative to its folder
    result = _invoke("train", flowers / "flowers.yaml", "--procs", "1", "--no-progress")
    assert result.exit_code == 0, result.output
    (best,) = (flowers / "flowers" / "runs").glob("*/best.npz")
    info = checkpoint.load(best).info
    assert info.class_names == ("blue", "green", "red") and info.input_shape == (3, 12, 12)
    assert info.config["data"]["root"] == str((flowers / "flowers").resolve())
    red = next((flowers / "flowers" / "train" / "red").glob("*.png"))
    answer = json.loads(_invoke("predict", "--weights", best, red, "--json").output)[0]
    assert answer["top"]["code"] == "red" and answer["predictions"][0]["code"] == "red"
    evaluated = _invoke("evaluate", "--weights", best, "--json", "--split", "validation")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output)["accuracy"] > 0.9
    summary = _invoke("summary", "--weights", best)
    assert "trainable parameters: 547" in summary.output  # conv 4*3*9+4, dense 4*6*6*3+3
    out = flowers / "model.npz"
    exported = _invoke("export", "--weights", best, "--out", out)
    assert exported.exit_code == 0 and out.is_file(), exported.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~_umask()
    assert fcnn.load(out).class_names == ("blue", "green", "red")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_model_errors_name_the_file_and_the_key(flowers):
    config = flowers / "flowers.yaml"
    text = config.read_text()
    config.write_text(text.replace("model: net.yaml", "model: my_net"))
    result = _invoke("train", config, "--procs", "1")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{config}: model: unknown model 'my_net'" in result.output
    config.write_text(text.replace("model: net.yaml", "model: nowhere.yaml"))
    result = _invoke("train", config, "--procs", "1")
    assert f"the spec file {flowers / 'nowhere.yaml'} does not exist" in result.output
    config.write_text(text + "model_options: {widths: [8]}\n")
    assert "model_options apply to presets" in _invoke("train", config).output
    config.write_text(text.replace("out_features: 3", "out_features: 5"))
    (flowers / "net.yaml").write_text(SPEC.replace("out_features: 3", "out_features: 5"))
    result = _invoke("train", config, "--procs", "1", "--no-progress")
    assert result.exit_code == 2 and "output has shape (5,), but the data has 3" in result.output
    assert not (flowers / "runs").exists()  # refused before any folder was made


def test_an_arrays_file_with_class_names_trains(tmp_path):
    rng = np.random.default_rng(1)
    y = np.arange(120) % 2
    x = rng.integers(0, 50, (120, 1, 8, 8)).astype(np.uint8)
    x[y == 1, :, :4] = 250
    np.savez(tmp_path / "halves.npz", x_train=x, y_train=y, class_names=np.array(["low", "up"]))
    (tmp_path / "halves.yaml").write_text(
        "dataset: arrays\ndata: {path: halves.npz}\n"
        "model: {type: serial, layers: [{type: Flatten}, {type: Dense, out_features: 2}]}\n"
        "train: {epochs: 3, lr: 0.05, batch_size: 16}\n"
        f"runs_dir: {tmp_path / 'runs'}\n"
    )
    result = _invoke("train", tmp_path / "halves.yaml", "--procs", "1", "--no-progress")
    assert result.exit_code == 0, result.output
    summary = json.loads(next((tmp_path / "runs").glob("*/summary.json")).read_text())
    assert summary["test_acc"] > 0.9  # the held-out 20 % split the loader made
    (best,) = (tmp_path / "runs").glob("*/best.npz")
    assert checkpoint.load(best).info.class_names == ("low", "up")


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x_train": np.zeros((4, 8, 8), np.float32), "y_train": np.zeros(4, int)}, "uint8"),
        ({"x_train": np.zeros((4, 8, 8), np.uint8)}, "it has ['x_train']"),
        ({"x_train": np.zeros((4, 8, 8), np.uint8), "y_train": np.zeros(3, int)}, "4 integer"),
        (
            {"x_train": np.zeros((4, 8, 8), np.uint8), "y_train": np.zeros(4, int), "z": [1]},
            "optionally x_test",
        ),
    ],
)
def test_a_bad_arrays_file_is_one_line(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    (tmp_path / "bad.yaml").write_text(
        "dataset: arrays\ndata: {path: bad.npz}\nmodel: lenet_mnist\ntrain: {epochs: 1, lr: 0.1}\n"
        f"runs_dir: {tmp_path / 'runs'}\n"
    )
    result = _invoke("train", tmp_path / "bad.yaml", "--procs", "1")
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "runs").exists()


PLUGIN = """
import numpy as np
import fcnn.data
import fcnn.models
from fcnn.data import Dataset, Loaded
from fcnn.layers import Dense, Flatten, serial


@fcnn.models.register("flat_net")
def flat_net(num_classes: int = 2, hidden: int = 8):
    return serial(Flatten(), Dense(hidden), Dense(num_classes))  # takes the data's shape


@fcnn.data.register("stripes")
def stripes(request):
    rng = np.random.default_rng(request.seed)
    y = np.arange(200) % 2
    x = rng.integers(0, 40, (200, 1, 6, 6)).astype(np.uint8)
    x[y == 1, :, :, ::2] = 240
    names = ("plain", "striped")
    return Loaded(Dataset(x[:160], y[:160], names), Dataset(x[160:], y[160:], names))
"""


@pytest.mark.parametrize("how", ["module in the current folder", "path of a .py file"])
def test_plugins_register_presets_and_data_sets(tmp_path, monkeypatch, how):
    (tmp_path / "my_plugin.py").write_text(PLUGIN)
    (tmp_path / "stripes.yaml").write_text(
        "dataset: stripes\nmodel: flat_net\nmodel_options: {hidden: 4}\n"
        "train: {epochs: 2, lr: 0.1, batch_size: 16}\nruns_dir: runs\n"
    )
    monkeypatch.chdir(tmp_path)
    plugin = "my_plugin" if how.startswith("module") else str(tmp_path / "my_plugin.py")
    monkeypatch.delenv("FCNN_PLUGINS", raising=False)
    sys.modules.pop("my_plugin", None)  # the other case's, from its own folder
    listed = _invoke("--plugin", plugin, "models")
    assert listed.exit_code == 0, listed.output
    assert "flat_net" in listed.output and "hidden=8" in listed.output
    result = _invoke("--plugin", plugin, "train", "stripes.yaml", "--procs", "1", "--no-progress")
    assert result.exit_code == 0, result.output
    assert json.loads(next(tmp_path.glob("runs/*/summary.json")).read_text())["test_acc"] > 0.9
    os.environ.pop("FCNN_PLUGINS", None)  # the root command exported it for its workers
    sys.modules.pop("my_plugin", None)


def test_a_script_model_saved_with_fcnn_save_predicts_from_the_cli(tmp_path):
    preset = models.get("lenet_mnist")
    _, params, state = preset.network.init(fr.key(0), preset.input_shape)
    names = [str(d) for d in range(10)]
    path = fcnn.save(
        tmp_path / "mine.npz", preset.network, params, state, input_shape=(1, 28, 28),
        class_names=names, normalization={"mean": [33.3], "std": [78.6]},
    )  # fmt: skip
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "blank.png")
    result = _invoke("predict", "--weights", path, tmp_path / "blank.png", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["top"]["code"] in names
    assert _invoke("summary", "--weights", path).output.count("Conv2D") == 2
    with pytest.raises(ValueError, match="outputs of shape .10,. .* 9 class names"):
        fcnn.save(tmp_path / "x.npz", preset.network, params, state, input_shape=(1, 28, 28),
                  class_names=names[:9])  # fmt: skip
    with pytest.raises(checkpoint.CheckpointError, match="shape"):
        fcnn.save(tmp_path / "x.npz", preset.network, params, state, input_shape=(1, 32, 32),
                  class_names=names)  # fmt: skip
    assert not (tmp_path / "x.npz").exists()


def test_serve_refuses_a_model_the_conditions_do_not_cover(tmp_path):
    preset = models.get("lenet_mnist")
    _, params, state = preset.network.init(fr.key(0), preset.input_shape)
    path = fcnn.save(tmp_path / "digits.npz", preset.network, params, state,
                     input_shape=(1, 28, 28), class_names=[str(d) for d in range(10)])  # fmt: skip
    result = _invoke("serve", "--model", path, "--port", "1")
    assert result.exit_code == 2 and "not in DermaScan's conditions database" in result.output


def test_a_data_dir_that_does_not_exist_is_an_error_not_a_download(tmp_path):
    result = _invoke(
        "train", "configs/mnist.yaml", "--procs", "1", "--data-dir", tmp_path / "nowhere",
        "--set", f"runs_dir={tmp_path / 'runs'}",
    )  # fmt: skip
    assert result.exit_code == 2 and f"{tmp_path / 'nowhere'} does not exist" in result.output
    assert "download" not in result.output.lower().split("does not exist")[0]
    assert not (tmp_path / "runs").exists()


def test_a_too_small_data_set_is_one_line_before_any_folder(fake_mnist_root, tmp_path):
    result = _invoke(
        "train", "configs/mnist.yaml", "--procs", "1", "--data-dir", fake_mnist_root,
        "--set", "data.limit_train=5", "--set", f"runs_dir={tmp_path / 'runs'}",
    )  # fmt: skip
    assert result.exit_code == 2 and "too few to split" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "runs").exists()


def test_evaluate_reads_the_data_root_the_run_used(fake_mnist_root, tmp_path, monkeypatch):
    monkeypatch.delenv("FCNN_DATA", raising=False)
    result = _invoke(
        "train", "configs/mnist.yaml", "--procs", "1", "--no-progress", "--data-dir",
        fake_mnist_root, "--set", "train.epochs=1", "--set", f"runs_dir={tmp_path / 'runs'}",
        "--set", "callbacks=[]",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (best,) = (tmp_path / "runs").glob("*/best.npz")
    evaluated = _invoke("evaluate", "--weights", best, "--json")  # no --data-dir, no FCNN_DATA
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output)["n"] == 200  # the fake test split, not a download


def test_help_shows_the_extras_name():
    assert "needs the [onnx] extra" in " ".join(_invoke("export", "--help").output.split())


def test_optimizers_refuse_a_negative_learning_rate():
    with pytest.raises(ValueError, match="non-negative"):
        fcnn.optim.sgd(-0.1)

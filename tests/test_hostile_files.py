"""Checkpoints and configs are data: each hostile one is a one-line error with memory bounded,
and structurally random ones give a one-line error or a model, never a traceback."""

from __future__ import annotations

import gzip
import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

import fcnn
from cli.main import app
from fcnn import models
from fcnn import random as fr
from fcnn.data import DataError
from fcnn.data.idx import read_maybe_gzip
from fcnn.training.config import ConfigError, load_config, parse_config

runner = CliRunner()


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A valid LeNet model and a digit image to predict on."""
    folder = tmp_path_factory.mktemp("good")
    preset = models.get("lenet_mnist")
    _, params, state = preset.network.init(fr.key(0), preset.input_shape)
    path = fcnn.save(folder / "good.npz", preset.network, params, state,
                     input_shape=(1, 28, 28), class_names=[str(d) for d in range(10)])  # fmt: skip
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(folder / "digit.png")
    return path, folder / "digit.png"


def _arrays(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _write(path, arrays, manifest=None):
    arrays = dict(arrays)
    if manifest is not None:
        arrays["__manifest__"] = np.array(json.dumps(manifest))
    np.savez(path, **arrays)
    return path


def _manifest(good_path):
    return json.loads(str(_arrays(good_path)["__manifest__"]))


def _one_line_error(path, image):
    result = runner.invoke(app, ["predict", "--weights", str(path), str(image)])
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    return result.output


DEEP = "__deep__"


def _nested_text(depth):
    """JSON text nested ``depth`` objects deep (too deep for json.dumps to write)."""
    return '{"a": ' * depth + "0" + "}" * depth


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(input_shape=[3, 1_000_000, 1_000_000]), "input_shape"),
        (lambda m: m.update(input_shape="1x28x28"), "input_shape"),
        (lambda m: m.update(class_names=["0", "1"]), "names 2 classes"),
        (lambda m: m.update(format_version=True), "format True"),
        (lambda m: m.update(architecture={"type": "serial"}), "non-empty list"),
        (lambda m: m.update(architecture=DEEP + "5000"), "nested"),
        (lambda m: m.update(extra=DEEP + "200"), "nested"),
    ],
    ids=[
        "huge input",
        "string input",
        "few classes",
        "bool version",
        "serial",
        "deep arch",
        "deep json",
    ],
)
def test_a_hostile_manifest_is_one_line(good, tmp_path, change, message):
    path, image = good
    manifest = _manifest(path)
    change(manifest)
    arrays = {k: v for k, v in _arrays(path).items() if k != "__manifest__"}
    text = json.dumps(manifest)
    for depth in (5000, 200):
        text = text.replace(f'"{DEEP}{depth}"', _nested_text(depth))
    bad = tmp_path / "bad.npz"
    np.savez(bad, __manifest__=np.array(text), **arrays)
    assert message in _one_line_error(bad, image)


@pytest.mark.parametrize(
    ("leaf", "message"),
    [
        (np.full((6, 1, 5, 5), np.nan, np.float32), "NaN or infinite"),
        (np.ones((6, 1, 5, 5), np.complex64), "real floats"),
        (np.ones((6, 1, 5, 5), np.int32), "real floats"),
    ],
)
def test_weights_must_be_finite_real_floats(good, tmp_path, leaf, message):
    path, image = good
    arrays = _arrays(path)
    arrays["params/0.w"] = leaf
    assert message in _one_line_error(_write(tmp_path / "bad.npz", arrays), image)


def test_an_unused_huge_member_is_refused_before_it_is_inflated(good, tmp_path):
    path, image = good
    bad = tmp_path / "bad.npz"
    bad.write_bytes(path.read_bytes())
    with (
        zipfile.ZipFile(bad, "a", compression=zipfile.ZIP_DEFLATED) as z,
        z.open("junk.npy", "w", force_zip64=True) as member,
    ):
        np.lib.format.write_array_header_1_0(
            member, {"descr": "<f4", "fortran_order": False, "shape": (2**28,)}
        )
        block = bytes(2**20)
        for _ in range(1024):  # 1 GiB of zeros: a few MB on disk
            member.write(block)
    assert bad.stat().st_size < 10 * 2**20
    assert "'junk', which no checkpoint has" in _one_line_error(bad, image)


def test_a_declared_size_past_the_data_is_refused(good, tmp_path):
    path, image = good
    bad = tmp_path / "bad.npz"
    arrays = _arrays(path)
    arrays["params/0.w"] = np.zeros(4, np.float32)
    _write(bad, arrays)
    with zipfile.ZipFile(bad) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    header = io.BytesIO()  # an .npy header declaring 10**12 floats, then 16 bytes of data
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)}
    )
    head = header.getvalue()
    members["params/0.w.npy"] = head + b"\x00" * 16
    with zipfile.ZipFile(bad, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    assert "declares" in _one_line_error(bad, image)


def test_a_gzip_stream_is_decompressed_no_further_than_its_expected_size(tmp_path):
    bomb = tmp_path / "train-labels-idx1-ubyte.gz"
    bomb.write_bytes(gzip.compress(bytes(50 * 2**20), compresslevel=9))  # 50 MB in ~50 kB
    with pytest.raises(DataError, match="larger than the 60,008 bytes"):
        read_maybe_gzip(bomb, 60_008)


CONFIG_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["train", "data", "model", "epochs", "lr", "augment", "rotate",
                         "callbacks", "checkpoint", "x"]), children, max_size=3),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    raw=st.fixed_dictionaries(
        {"dataset": st.sampled_from(["mnist", "cifar10", "nope"])},
        optional={
            "model": st.sampled_from(["lenet_mnist", "x"]) | CONFIG_VALUES,
            "train": CONFIG_VALUES,
            "data": CONFIG_VALUES,
            "callbacks": CONFIG_VALUES,
            "model_options": CONFIG_VALUES,
            "seed": CONFIG_VALUES,
        },
    )
)
def test_structurally_random_configs_give_one_line_errors_or_configs(raw):
    try:
        parse_config(raw)
    except ConfigError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=60, deadline=None)
@given(
    change=st.dictionaries(
        st.sampled_from(["architecture", "input_shape", "class_names", "normalization",
                         "calibration", "decision", "answer_rules", "ood", "format_version",
                         "config", "training"]),
        CONFIG_VALUES,
        max_size=3,
    )
)  # fmt: skip
def test_structurally_random_manifests_give_one_line_errors_or_models(good, change):
    path, image = good
    manifest = {**_manifest(path), **change}
    arrays = {k: v for k, v in _arrays(path).items() if k != "__manifest__"}
    bad = _write(path.with_name("fuzz.npz"), arrays, manifest)  # each example replaces it
    result = runner.invoke(app, ["predict", "--weights", str(bad), str(image)])
    assert result.exit_code in (0, 2), (change, result.output, result.exception)
    if result.exit_code == 2:
        assert len(result.output.strip().splitlines()) == 1


def test_config_yaml_hazards_are_one_line(tmp_path):
    cases = {
        "a key twice": "dataset: mnist\nmodel: lenet_mnist\ntrain: {epochs: 1, lr: 0.1}\n"
        "train: {epochs: 2, lr: 0.1}\n",
        "a top-level list": "- dataset: mnist\n",
        "deep nesting": "x: " + "[" * 200 + "]" * 200 + "\n",
        "a NaN": "dataset: mnist\nmodel: lenet_mnist\ntrain: {epochs: 1, lr: 0.1}\n"
        "data: {augment: {rotate: .nan}}\n",
        "an unknown option": "dataset: mnist\nmodel: lenet_mnist\nmodel_options: {wide: 1}\n"
        "train: {epochs: 1, lr: 0.1}\n",
        "a huge image size": "dataset: ham10000\nmodel: dermascan_cnn\n"
        "train: {epochs: 1, lr: 0.1}\ndata: {image_size: [100000, 100000]}\n",
    }
    for name, text in cases.items():
        (tmp_path / "c.yaml").write_text(text)
        try:
            config = load_config(tmp_path / "c.yaml")
        except ConfigError as exc:
            assert "\n" not in str(exc), name
            continue
        if name == "an unknown option":  # found where the network is built
            with pytest.raises(ValueError, match="takes no option 'wide'"):
                models.get(config.model, **config.model_options)
            continue
        pytest.fail(f"{name} was accepted")

"""The layer registry: user layers round-trip through spec, from_spec and checkpoints;
built-in names are protected; checkpoints never import code (plugins do, on request)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scale_plugin

from fcnn import checkpoint, layers
from fcnn import random as fr
from fcnn.layers import Dense, Flatten, from_spec, serial
from fcnn.layers.registry import registered

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"


def _net():
    return serial(Flatten(), Dense(4), scale_plugin.Scale(), Dense(3))


def test_a_network_with_a_user_layer_round_trips_through_its_spec():
    net = _net()
    rebuilt = from_spec(net.spec)
    assert rebuilt.spec == net.spec and "Scale" in registered()
    _, params, state = net.init(fr.key(0), (1, 4, 4))
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    y1, _, _ = net.apply(params, x, state=state)
    y2, _, _ = rebuilt.apply(params, x, state=state)
    np.testing.assert_array_equal(y1, y2)


def test_builtin_names_cannot_be_overridden_and_taken_names_stay_taken():
    with pytest.raises(ValueError, match="built-in"):
        layers.register("Conv2D")(lambda: None)
    with pytest.raises(ValueError, match="combinator"):
        layers.register("serial")(lambda: None)
    with pytest.raises(ValueError, match="registered already"):
        layers.register("Scale")(lambda: None)
    layers.register("Scale")(scale_plugin.Scale)  # the same constructor again: harmless


def test_an_unknown_type_says_how_to_load_its_module():
    with pytest.raises(ValueError, match="--plugin MODULE"):
        from_spec({"type": "NobodysLayer"})


def _save_model(path: Path) -> Path:
    net = _net()
    _, params, state = net.init(fr.key(1), (1, 4, 4))
    manifest = {
        "architecture": net.spec,
        "input_shape": [1, 4, 4],
        "class_names": ["a", "b", "c"],
        "normalization": {"mean": [0.0], "std": [1.0]},
    }
    return checkpoint.save(path, manifest, params=params, state=state)


def _fcnn(*args, plugins: str | None = None):
    env = {k: v for k, v in os.environ.items() if k != "FCNN_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(TESTS)])
    if plugins:
        env["FCNN_PLUGINS"] = plugins
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, env=env
    )


def test_a_checkpoint_with_a_user_layer_loads_only_with_its_plugin(tmp_path):
    weights = _save_model(tmp_path / "scaled.npz")
    from PIL import Image

    Image.fromarray(np.full((4, 4), 9, np.uint8)).save(tmp_path / "x.png")
    predict = ["predict", "--weights", str(weights), str(tmp_path / "x.png"), "--json"]
    without = _fcnn(*predict)
    assert without.returncode == 2 and "Traceback" not in without.stderr
    assert "'Scale'" in without.stderr and "--plugin" in without.stderr
    with_flag = _fcnn("--plugin", "scale_plugin", *predict)
    assert with_flag.returncode == 0, with_flag.stderr
    with_env = _fcnn(*predict, plugins="scale_plugin")
    assert with_env.returncode == 0 and with_env.stdout == with_flag.stdout
    missing = _fcnn("--plugin", "no_such_plugin", *predict)
    assert missing.returncode == 2 and "no_such_plugin" in missing.stderr


@pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="needs the [onnx] extra")
def test_a_user_layer_without_an_onnx_exporter_is_a_clear_export_error(tmp_path):
    weights = _save_model(tmp_path / "scaled.npz")
    out = tmp_path / "m.onnx"
    done = _fcnn(
        "--plugin", "scale_plugin", "export", "--weights", str(weights), "--out", str(out),
        "--format", "onnx",
    )  # fmt: skip
    assert done.returncode == 2 and "'Scale' has no ONNX exporter" in done.stderr
    assert "Traceback" not in done.stderr and not out.exists()


def test_every_preset_is_built_from_registered_types():
    from fcnn import models

    def types(spec):
        if spec["type"] == "serial":
            return set().union(*(types(s) for s in spec["layers"]))
        if spec["type"] == "residual":
            return types(spec["block"]) | (types(spec["shortcut"]) if spec["shortcut"] else set())
        return {spec["type"]}

    for name in models.names():
        spec = models.get(name).network.spec
        assert types(spec) <= set(registered()) and from_spec(spec).spec == spec

"""ONNX export (fcnn.onnx_export): every preset and the shipped DermaScan model, run with
onnxruntime against fcnn on the same pixels: probabilities within 1e-4, same decisions."""

from __future__ import annotations

import numpy as np
import pytest

from fcnn import checkpoint, models
from fcnn import random as fr
from fcnn.calibration import Calibration
from fcnn.data.transforms import Normalization
from fcnn.decision import DecisionRule
from fcnn.inference import load
from fcnn.onnx_export import OnnxExportError, export_onnx, model_graph

ort = pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")

SHIPPED = "webapp/model/dermascan.npz"
# float32 through two implementations of the same graph (BLAS vs onnxruntime's kernels):
# probabilities agree to ~1e-6; 1e-4 is the contract
ATOL = 1e-4


def _run(proto, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    probs, decision = session.run(None, {"pixels": pixels.astype(np.float32)})
    return probs, decision


def _preset_model(tmp_path, name: str, calibration: Calibration, decision: DecisionRule):
    """A preset with random weights (and non-trivial BatchNorm statistics), calibration and
    decision rule, saved as a checkpoint and loaded back as fcnn.load would."""
    preset = models.get(name)
    _, params, state = preset.network.init(fr.key(3), preset.input_shape)
    rng = np.random.default_rng(0)
    state = _perturb(state, rng)
    c = preset.input_shape[0]
    manifest = {
        "architecture": preset.network.spec,
        "model": name,
        "input_shape": list(preset.input_shape),
        "class_names": [f"c{i}" for i in range(10 if name != "dermascan_cnn" else 7)],
        "normalization": Normalization((120.0,) * c, (60.0,) * c).to_dict(),
        "calibration": calibration.to_dict(),
        "decision": decision.to_dict(),
    }
    path = checkpoint.save(tmp_path / f"{name}.npz", manifest, params=params, state=state)
    return load(path)


def _perturb(state, rng):
    """BatchNorm running statistics away from (0, 1), so that folding is exercised."""
    from fcnn import tree

    return tree.map(lambda leaf: leaf + rng.uniform(0.1, 0.5, leaf.shape).astype(leaf.dtype), state)


def _pixels(model, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *model.input_shape)).astype(np.float32)


PRESETS = ["lenet_mnist", "tiny_vgg_cifar", "bn_net_mnist", "dermascan_cnn", "airbench_cifar"]


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize(
    ("calibration", "weighted"),
    [
        (Calibration("temperature", 1.7), False),
        (Calibration("vector", 1.0, (0.9,) * 7, (0.1,) * 7), True),
    ],
)
def test_every_preset_exports_and_matches_fcnn(tmp_path, name, calibration, weighted):
    k = 7 if name == "dermascan_cnn" else 10
    if calibration.method == "vector":
        calibration = Calibration("vector", 1.0, tuple(np.linspace(0.5, 1.5, k)), (0.1,) * k)
    decision = DecisionRule(tuple(np.linspace(1.0, 3.0, k))) if weighted else DecisionRule()
    model = _preset_model(tmp_path, name, calibration, decision)
    pixels = _pixels(model, 5)
    probs, answered = _run(model_graph(model), pixels)
    np.testing.assert_allclose(probs, model.predict(pixels), atol=ATOL)
    assert (answered == model.classify(pixels)).all() and answered.dtype == np.int64


def test_the_shipped_dermascan_model_exports_with_everything_inside(tmp_path):
    model = load(SHIPPED)
    path = export_onnx(model, tmp_path / "dermascan.onnx")
    import onnx

    proto = onnx.load(str(path))
    assert proto.opset_import[0].version >= 17
    assert [o.name for o in proto.graph.output] == ["probabilities", "decision"]
    pixels = _pixels(model, 16)
    probs, answered = _run(proto, pixels)
    np.testing.assert_allclose(probs, model.predict(pixels), atol=ATOL)
    assert (answered == model.classify(pixels)).all()
    # one graph for any batch size
    probs_one, _ = _run(proto, pixels[:1])
    np.testing.assert_allclose(probs_one, probs[:1], atol=ATOL)


@pytest.mark.data
@pytest.mark.parametrize(
    ("name", "dataset"),
    [("lenet_mnist", "mnist"), ("bn_net_mnist", "mnist"), ("tiny_vgg_cifar", "cifar10")],
)
def test_presets_on_real_images(real_data_root, tmp_path, name, dataset):
    from fcnn.training.config import parse_config
    from fcnn.training.data import prepare_data

    cfg = parse_config(
        {
            "dataset": dataset,
            "model": name,
            "train": {"epochs": 1, "lr": 0.1},
            "data": {"limit_train": 200, "limit_test": 64},
        }
    )
    images = prepare_data(cfg, real_data_root).test.images[:64]
    model = _preset_model(tmp_path, name, Calibration("temperature", 1.3), DecisionRule())
    probs, answered = _run(model_graph(model), images.astype(np.float32))
    np.testing.assert_allclose(probs, model.predict(images), atol=ATOL)
    assert (answered == model.classify(images)).all()


@pytest.mark.data
def test_the_shipped_model_on_real_lesions(real_data_root):
    from fcnn.training.config import load_config
    from fcnn.training.data import prepare_data

    model = load(SHIPPED)
    test = prepare_data(load_config("configs/dermascan.yaml"), real_data_root).test
    images = test.images[:128]
    probs, answered = _run(model_graph(model), images.astype(np.float32))
    np.testing.assert_allclose(probs, model.predict(images), atol=ATOL)
    assert (answered == model.classify(images)).all()


def test_a_layer_without_an_exporter_is_a_clear_error(tmp_path):
    from fcnn.layers import Layer, serial

    def init(key, input_shape):
        return tuple(input_shape), None, None

    def apply(params, x, *, state=None, train=False, key=None):
        return x * 2, None, state

    odd = Layer(spec={"type": "Doubler"}, init=init, apply=apply, backward=None)
    net = serial(odd)
    model = _preset_model(tmp_path, "lenet_mnist", Calibration(), DecisionRule())
    import attrs

    model = attrs.evolve(model, net=net, params=(None,), state=(None,))
    with pytest.raises(OnnxExportError, match="'Doubler' has no ONNX exporter"):
        model_graph(model)

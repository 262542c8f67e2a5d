import numpy as np
import pytest
from helpers import assert_unchanged, snapshot

from fcnn import models, tree
from fcnn import random as fr
from fcnn.layers import (
    BatchNorm1D,
    BatchNorm2D,
    Conv2D,
    Dense,
    Flatten,
    ReLU,
    residual,
    serial,
)
from fcnn.layers.folding import fold_batchnorm


def _with_running_stats(state, seed):
    """Non-trivial running statistics in every BatchNorm state (positive variances)."""
    rng = np.random.default_rng(seed)

    def randomize(leaf):
        return rng.uniform(0.2, 3.0, leaf.shape) if leaf.ndim else leaf

    return tree.map(randomize, state)


def _types(spec):
    if spec["type"] == "serial":
        return [t for child in spec["layers"] for t in _types(child)]
    if spec["type"] == "residual":
        return _types(spec["block"]) + (_types(spec["shortcut"]) if spec["shortcut"] else [])
    return [spec["type"]]


NETS = {
    "conv-bn": serial(Conv2D(4, 3, padding=1), BatchNorm2D(), ReLU(), Flatten(), Dense(5)),
    "dense-bn": serial(Flatten(), Dense(6), BatchNorm1D(), ReLU(), Dense(3)),
    "residual": serial(
        Conv2D(4, 3, padding=1),
        residual(
            serial(
                Conv2D(4, 3, padding=1),
                BatchNorm2D(),
                ReLU(),
                Conv2D(4, 3, padding=1),
                BatchNorm2D(),
            ),
        ),
        residual(
            serial(Conv2D(6, 3, stride=2, padding=1), BatchNorm2D()),
            serial(Conv2D(6, 1, stride=2), BatchNorm2D()),
        ),
        Flatten(),
        Dense(3),
    ),
}


@pytest.mark.parametrize("name", sorted(NETS))
def test_folded_network_gives_the_eval_outputs_without_batchnorm(name):
    net = NETS[name]
    _, params, state = net.init(fr.key(0), (2, 6, 6))
    rng = np.random.default_rng(1)
    params = tree.map(lambda a: a + rng.normal(0, 0.3, a.shape), params)
    state = _with_running_stats(state, 2)
    params, state = tree.astype(params, np.float64), tree.astype(state, np.float64)
    x = np.random.default_rng(3).standard_normal((3, 2, 6, 6))
    before = snapshot(params, state)
    folded, f_params, f_state = fold_batchnorm(net, params, state)
    assert "BatchNorm2D" in _types(net.spec) or "BatchNorm1D" in _types(net.spec)
    assert not {"BatchNorm2D", "BatchNorm1D"} & set(_types(folded.spec))
    want, _, _ = net.apply(params, x, state=state, train=False)
    got, _, _ = folded.apply(f_params, x, state=f_state, train=False)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    assert_unchanged(before, params, state)


def test_presets_fold_and_keep_their_dtype():
    preset = models.get("tiny_vgg_cifar")
    _, params, state = preset.network.init(fr.key(0), preset.input_shape)
    state = tree.astype(_with_running_stats(state, 4), np.float32)
    folded, f_params, f_state = fold_batchnorm(preset.network, params, state)
    assert "BatchNorm2D" not in _types(folded.spec)
    x = np.random.default_rng(5).standard_normal((2, *preset.input_shape)).astype(np.float32)
    want, _, _ = preset.network.apply(params, x, state=state, train=False)
    got, _, _ = folded.apply(f_params, x, state=f_state, train=False)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_a_network_without_a_foldable_batchnorm_comes_back_unchanged():
    lenet = models.get("lenet_mnist").network
    _, params, state = lenet.init(fr.key(0), (1, 28, 28))
    assert fold_batchnorm(lenet, params, state) == (lenet, params, state)
    leading = serial(BatchNorm2D(), Conv2D(2, 1))  # a BatchNorm before the conv stays
    _, params, state = leading.init(fr.key(0), (2, 3, 3))
    folded, _, _ = fold_batchnorm(leading, params, state)
    assert folded is leading

"""The composable Layer contract, checked for every layer in the catalog."""

import json

import numpy as np
import pytest
from helpers import assert_unchanged, snapshot

from fcnn import layers as L
from fcnn import random as fr
from fcnn import tree

CASES = [
    (L.Conv2D(4, 3, stride=2, padding="same"), (2, 9, 7)),
    (L.Conv2D(3, (2, 3), padding=(1, 0), dilation=2), (2, 8, 8)),
    (L.Dense(5), (6,)),
    (L.MaxPool2D(3, stride=2, padding=1), (2, 7, 7)),
    (L.AvgPool2D(2), (2, 6, 6)),
    (L.GlobalAvgPool2D(), (3, 4, 5)),
    (L.BatchNorm2D(), (3, 4, 4)),
    (L.BatchNorm1D(momentum=0.2), (5,)),
    (L.Dropout(0.25), (3, 4, 4)),
    (L.Flatten(), (2, 3, 3)),
    (L.ReLU(), (4,)),
    (L.LeakyReLU(0.1), (4,)),
    (L.Sigmoid(), (4,)),
    (L.Tanh(), (4,)),
    (L.Softmax(), (4,)),
    (L.serial(L.Conv2D(2, 3), L.ReLU(), L.Flatten(), L.Dense(3)), (1, 5, 5)),
    (L.residual(L.serial(L.Conv2D(2, 3, padding=1), L.BatchNorm2D())), (2, 4, 4)),
    (L.residual(L.Conv2D(4, 3, stride=2, padding=1), L.Conv2D(4, 1, stride=2)), (2, 6, 6)),
]
IDS = [repr(layer) for layer, _ in CASES]


@pytest.mark.parametrize(("layer", "in_shape"), CASES, ids=IDS)
@pytest.mark.parametrize("train", [False, True])
def test_init_predicts_shape_apply_is_pure_and_dtype_is_kept(layer, in_shape, train):
    out_shape, params, state = layer.init(fr.key(0), in_shape)
    x = fr.generator(fr.key(1)).standard_normal((3, *in_shape)).astype(np.float32)
    before = snapshot(params, state, x)
    y, cache, new_state = layer.apply(params, x, state=state, train=train, key=fr.key(2))
    assert y.shape == (3, *out_shape)
    assert y.dtype == np.float32
    dx, grads = layer.backward(params, cache, np.ones_like(y))
    assert dx.shape == x.shape and dx.dtype == np.float32
    assert tree.same_structure(grads, params)
    assert tree.same_structure(new_state, state)
    assert_unchanged(before, params, state, x)


@pytest.mark.parametrize(("layer", "in_shape"), CASES, ids=IDS)
def test_spec_is_json_and_rebuilds_the_same_layer(layer, in_shape):
    spec = json.loads(json.dumps(layer.spec))
    rebuilt = L.from_spec(spec)
    assert rebuilt.spec == layer.spec
    shape_a, params_a, _ = layer.init(fr.key(3), in_shape)
    shape_b, params_b, _ = rebuilt.init(fr.key(3), in_shape)
    assert shape_a == shape_b and tree.allclose(params_a, params_b)


def test_from_spec_rejects_unknown_layers_and_bad_hyperparameters():
    with pytest.raises(ValueError, match="unknown layer type 'Conv3D'"):
        L.from_spec({"type": "Conv3D"})
    with pytest.raises(ValueError, match="bad hyperparameters for Dense"):
        L.from_spec({"type": "Dense", "units": 3})


def test_serial_rejects_non_layers_and_residual_checks_shapes():
    with pytest.raises(TypeError, match="argument 1 is not a Layer"):
        L.serial(L.ReLU(), "relu")
    with pytest.raises(ValueError, match="projection shortcut"):
        L.residual(L.Conv2D(4, 3)).init(fr.key(0), (2, 5, 5))


@pytest.mark.parametrize(("layer", "in_shape"), CASES, ids=IDS)
def test_need_dx_false_gives_the_same_param_gradients(layer, in_shape):
    _, params, state = layer.init(fr.key(0), in_shape)
    x = fr.generator(fr.key(1)).standard_normal((3, *in_shape))
    params = tree.astype(params, np.float64)
    y, cache, _ = layer.apply(
        params, x, state=tree.astype(state, np.float64), train=True, key=fr.key(2)
    )
    dy = fr.generator(fr.key(3)).standard_normal(y.shape)
    dx, grads = layer.backward(params, cache, dy)
    dx_skipped, grads_skipped = layer.backward(params, cache, dy, need_dx=False)
    assert tree.allclose(grads, grads_skipped, rtol=1e-12, atol=0)
    if layer.name in ("Conv2D", "Dense", "serial", "residual"):
        assert dx_skipped is None

"""Every registered layer type and every layer module keeps the contract of fcnn.layers.base."""

import inspect

import attrs
import numpy as np
import pytest

from fcnn import layers as L
from fcnn import random as fr
from fcnn import tree
from fcnn.layers import (
    activations,
    base,
    batchnorm,
    conv,
    dense,
    dropout,
    flatten,
    pooling,
    registry,
)

MODULES = [activations, batchnorm, conv, dense, dropout, flatten, pooling]

# values for the hyperparameters that a constructor requires (the others keep their defaults)
REQUIRED = {"out_channels": 3, "kernel_size": 3, "out_features": 4}
INPUT_SHAPES = [(2, 6, 6), (5,)]  # one example: an image, or a feature vector


def _example(type_name: str) -> L.Layer:
    ctor = registry.constructor(type_name)
    required = [
        name
        for name, p in inspect.signature(ctor).parameters.items()
        if p.default is inspect.Parameter.empty
    ]
    unknown = [name for name in required if name not in REQUIRED]
    assert not unknown, f"{type_name} requires {unknown}: add example values to REQUIRED"
    return ctor(**{name: REQUIRED[name] for name in required})


def _init_on_some_shape(layer: L.Layer):
    errors = []
    for shape in INPUT_SHAPES:
        try:
            return shape, layer.init(fr.key(0), shape)
        except ValueError as exc:  # the layer takes the other kind of input
            errors.append(str(exc))
    raise AssertionError(f"{layer!r} accepts none of {INPUT_SHAPES}: {errors}")


def _keyword_only(fn, names):
    params = inspect.signature(fn).parameters
    return all(params[n].kind is inspect.Parameter.KEYWORD_ONLY for n in names)


def _positional(fn):
    """The names ``fn`` takes by position (an isinstance check against a runtime Protocol
    whose only member is ``__call__`` holds for any callable: the signature is the test)."""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in inspect.signature(fn).parameters.values() if p.kind in kinds]


# fcnn's own types: the registered set at collection time would depend on which test
# modules imported a plugin first (tests/scale_plugin.py's Scale takes (C,) features only)
@pytest.mark.parametrize("type_name", registry.builtins())
def test_every_registered_layer_keeps_the_composable_contract(type_name):
    layer = _example(type_name)
    assert isinstance(layer, base.Layer) and layer.spec["type"] == type_name
    assert len(_positional(layer.init)) == 2  # (key, input_shape)
    assert len(_positional(layer.apply)) == 2 and len(_positional(layer.backward)) == 3
    assert _keyword_only(layer.apply, ["state", "train", "key"])
    assert _keyword_only(layer.backward, ["need_dx"])
    in_shape, (out_shape, params, state) = _init_on_some_shape(layer)
    x = fr.generator(fr.key(1)).standard_normal((2, *in_shape))
    params, state = tree.astype(params, np.float64), tree.astype(state, np.float64)
    y, cache, new_state = layer.apply(params, x, state=state, train=True, key=fr.key(2))
    assert y.shape == (2, *out_shape) and y.dtype == np.float64
    assert tree.same_structure(new_state, state)
    dx, grads = layer.backward(params, cache, np.ones_like(y))
    assert dx.shape == x.shape and tree.same_structure(grads, params)
    assert L.from_spec(layer.spec).spec == layer.spec


@pytest.mark.parametrize("type_name", registry.registered())
def test_a_constructors_arguments_are_its_spec(type_name):
    layer = _example(type_name)
    signature = inspect.signature(registry.constructor(type_name))
    assert set(layer.spec) - {"type"} == set(signature.parameters)


BUILT_IN = {  # type name: (module, params class) whose init and static fields state it
    "Conv2D": (conv, conv.Conv2DParams),
    "Dense": (dense, dense.DenseParams),
    "MaxPool2D": (pooling, pooling.MaxPool2DParams),
    "AvgPool2D": (pooling, pooling.AvgPool2DParams),
    "BatchNorm2D": (batchnorm, batchnorm.BatchNormParams),
    "Dropout": (dropout, dropout.DropoutParams),
    "LeakyReLU": (activations, activations.LeakyReLUParams),
}


@pytest.mark.parametrize("type_name", sorted(BUILT_IN))
def test_each_hyperparameter_is_stated_once(type_name):
    """The constructor's arguments, with their defaults, are the module init's keywords and
    the params class's static fields, each in exactly one of the two."""
    module, params_class = BUILT_IN[type_name]
    init_keywords = {
        name: p.default
        for name, p in inspect.signature(module.init).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in base.NOT_HYPERPARAMETERS
    }
    static = {f.name: f.default for f in attrs.fields(params_class) if tree.is_static(f)}
    assert not init_keywords.keys() & static.keys()
    signature = inspect.signature(registry.constructor(type_name))
    assert {n: p.default for n, p in signature.parameters.items()} == {**init_keywords, **static}


def test_a_static_field_added_to_a_params_class_becomes_a_hyperparameter():
    @attrs.frozen
    class ScaleParams:
        w: np.ndarray
        factor: float = tree.static_field(default=2.0)

    def init(key, input_shape, *, units: int, dtype=np.float32, **static):
        return input_shape, ScaleParams(np.ones(units, dtype), **static)

    signature = base.hyperparameters(init, ScaleParams)
    assert list(signature.parameters) == ["units", "factor"]
    assert signature.parameters["factor"].default == 2.0


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_layer_module_takes_hyperparameters_keyword_only(module):
    params = list(inspect.signature(module.init).parameters.values())
    assert [p.name for p in params[:2]] == ["key", "input_shape"]
    named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD)
    positional = [p.name for p in params[2:] if p.kind not in named]
    assert not positional, f"{module.__name__}.init takes {positional} by position"
    assert _positional(module.forward)[:2] == ["params", "x"]
    assert _positional(module.backward)[:3] == ["params", "cache", "dy"]
    forward_extra = set(inspect.signature(module.forward).parameters) - {"params", "x"}
    assert forward_extra <= {"state", "train", "key"} and _keyword_only(
        module.forward, forward_extra
    )


def test_the_params_class_selects_the_computation():
    x = np.array([[-2.0, 0.5]])
    assert activations.forward(activations.ReLUParams(), x)[0].tolist() == [[0.0, 0.5]]
    assert activations.forward(activations.TanhParams(), x)[0][0, 0] == pytest.approx(np.tanh(-2))
    with pytest.raises(TypeError, match="not an activation's params: DenseParams"):
        activations.forward(dense.DenseParams(np.ones((1, 2)), np.zeros(1)), x)
    with pytest.raises(TypeError, match="not a pooling layer's params: ReLUParams"):
        pooling.forward(activations.ReLUParams(), np.ones((1, 1, 2, 2)))


def test_built_in_names_cannot_be_taken():
    with pytest.raises(ValueError, match="built-in layer type"):
        L.register("Conv2D")(lambda: None)

import numpy as np
import pytest

from fcnn import explain, tree
from fcnn import layers as L
from fcnn import random as fr
from fcnn.gradcheck import numeric_vjp


def _tiny():
    net = L.serial(
        L.Conv2D(3, 3, padding=1),
        L.BatchNorm2D(),
        L.Tanh(),
        L.GlobalAvgPool2D(),
        L.Dropout(0.5),
        L.Dense(4),
    )
    _, params, state = net.init(fr.key(0), (2, 5, 5))
    params = tree.astype(params, np.float64)
    state = tree.astype(state, np.float64)
    return net, params, state


def test_saliency_is_the_finite_difference_gradient_of_the_class_score():
    net, params, state = _tiny()
    x = fr.generator(fr.key(1)).standard_normal((1, 2, 5, 5))
    for k in range(4):
        analytic = explain.input_gradient(net, params, state, x, k)
        dy = np.zeros((1, 4))
        dy[0, k] = 1

        def score(v):
            return net.apply(params, v, state=state, train=False)[0]

        np.testing.assert_allclose(analytic, numeric_vjp(score, x, dy), rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError, match="class_index"):
        explain.input_gradient(net, params, state, x, 9)


def test_features_are_the_input_of_the_last_layer_by_default():
    net, params, state = _tiny()
    x = fr.generator(fr.key(2)).standard_normal((3, 2, 5, 5))
    f = explain.features(net, params, state, x)
    assert f.shape == (3, 3)
    logits = net.apply(params, x, state=state, train=False)[0]
    np.testing.assert_allclose(f @ params[5].w.T + params[5].b, logits)  # dropout is identity


def test_features_are_read_at_the_tap_the_network_declares():
    net, params, state = _tiny()
    tapped = L.serial(*net.children, features=2)  # after Tanh, before the global pool
    x = fr.generator(fr.key(2)).standard_normal((3, 2, 5, 5))
    f = explain.features(tapped, params, state, x)
    assert f.shape == (3, 3, 5, 5)
    np.testing.assert_allclose(f.mean(axis=(2, 3)), explain.features(net, params, state, x))
    assert L.from_spec(tapped.spec).spec["features"] == 2
    with pytest.raises(ValueError, match="a layer before the last"):
        L.serial(*net.children, features=5)
    with pytest.raises(ValueError, match="only a serial network has a feature tap"):
        explain.features(net.children[0], params[0], state[0], x)

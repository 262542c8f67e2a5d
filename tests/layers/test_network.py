"""The network walker, and a combinator added in one place: everything that reads networks
(the spec reader, costs, folding, fusion, ONNX export) takes it through its registration."""

import numpy as np

from fcnn import layers as L
from fcnn import random as fr
from fcnn import tree
from fcnn.layers import network, registry
from fcnn.layers.base import Layer
from fcnn.layers.cost import layer_costs
from fcnn.layers.folding import fold_batchnorm


def branches(first: Layer, second: Layer) -> Layer:
    """``first(x) + second(x)``: a combinator this test defines and registers, nothing else."""

    def init(key, shape):
        k1, k2 = fr.split(key, 2)
        out, p1, s1 = first.init(k1, shape)
        _, p2, s2 = second.init(k2, shape)
        return out, (p1, p2), (s1, s2)

    def apply(params, x, *, state=None, train=False, key=None):
        s1, s2 = (None, None) if state is None else state
        y1, c1, s1 = first.apply(params[0], x, state=s1, train=train)
        y2, c2, s2 = second.apply(params[1], x, state=s2, train=train)
        return y1 + y2, (c1, c2), (s1, s2)

    def backward(params, cache, dy, *, need_dx=True):
        dx1, g1 = first.backward(params[0], cache[0], dy)
        dx2, g2 = second.backward(params[1], cache[1], dy)
        return dx1 + dx2, (g1, g2)

    spec = {"type": "test_branches", "first": first.spec, "second": second.spec}
    return Layer(spec, init, apply, backward, children=(first, second))


registry.combinator(
    "test_branches",
    registry.Combinator(
        children=lambda spec: (spec["first"], spec["second"]),
        build=lambda spec, children: branches(*children),
        with_children=lambda spec, c: {**spec, "first": c[0], "second": c[1]},
        flow=lambda spec, run, x, add: add(run(0, spec["first"], x), run(1, spec["second"], x)),
    ),
)


def _net():
    conv_bn = L.serial(L.Conv2D(2, 3, padding=1), L.BatchNorm2D(), L.ReLU(), L.MaxPool2D(1))
    return L.serial(branches(conv_bn, L.Conv2D(2, 1)), L.GlobalAvgPool2D(), L.Dense(3))


def test_a_registered_combinator_round_trips_costs_folds_and_fuses():
    net = _net()
    assert L.from_spec(net.spec).spec == net.spec
    rows = layer_costs(net.spec, (1, 6, 6))
    assert [r.path for r in rows] == ["0.0.0", "0.0.1", "0.0.2", "0.0.3", "0.1", "1", "2"]
    assert rows[0].multiply_adds == 2 * 36 * 9 and rows[4].multiply_adds == 2 * 36

    _, params, state = net.init(fr.key(0), (1, 6, 6))
    state = tree.map(lambda v: v + 0.5, state)  # running statistics that change the output
    x = fr.generator(fr.key(1)).standard_normal((2, 1, 6, 6)).astype(np.float32)
    want = net.apply(params, x, state=state)[0]
    folded, f_params, f_state = fold_batchnorm(net, params, state)
    inner = folded.spec["layers"][0]["first"]["layers"]
    assert [s["type"] for s in inner] == ["Conv2D", "ReLU", "MaxPool2D"]
    np.testing.assert_allclose(
        folded.apply(f_params, x, state=f_state)[0], want, rtol=1e-5, atol=1e-6
    )
    fused = L.fuse(net)
    assert fused.spec == net.spec
    np.testing.assert_array_equal(fused.apply(params, x, state=state)[0], want)


def test_the_walker_passes_values_through_every_combinator():
    net = _net()
    seen = []

    def leaf(spec, path, _params, _state, value):
        seen.append(path)
        return value + 1

    # a value of 0 gains 1 per layer; the two branches add: (4 + 1) + 1 + 1
    assert network.walk(net.spec, 0, leaf, lambda a, b: a + b) == 7
    assert seen == [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 0, 3), (0, 1), (1,), (2,)]


def test_folding_moves_the_feature_tap_with_its_layer():
    net = L.serial(L.Conv2D(2, 3), L.BatchNorm2D(), L.ReLU(), L.GlobalAvgPool2D(), L.Dense(2),
                   features=3)  # fmt: skip
    _, params, state = net.init(fr.key(0), (1, 5, 5))
    folded, _, _ = fold_batchnorm(net, params, state)
    assert folded.spec["features"] == 2
    assert folded.spec["layers"][2]["type"] == "GlobalAvgPool2D"

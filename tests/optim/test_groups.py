"""Parameter groups: labels by path, and multi_transform applying a transform per group."""

import numpy as np
import pytest

from fcnn import layers as L
from fcnn import optim, tree
from fcnn import random as fr
from fcnn.optim import groups


def _net_params():
    net = L.serial(L.Conv2D(4, 3), L.BatchNorm2D(scale=False), L.ReLU(), L.Flatten(), L.Dense(3))
    return net.init(fr.key(0), (2, 5, 5))[1]


def test_labels_pick_the_first_matching_pattern_by_path():
    params = _net_params()
    labels = dict(
        zip(
            [p for p, _ in tree.flatten_with_paths(params)],
            tree.leaves(groups.labels(params, ["*.beta", "0.*"])),
            strict=True,
        )
    )
    assert labels == {
        "0.w": "group1",
        "0.b": "group1",
        "1.beta": "group0",
        "4.w": "default",
        "4.b": "default",
    }


def test_a_pattern_that_matches_nothing_is_an_error_listing_the_paths():
    with pytest.raises(ValueError, match=r"\['\*\.gamma'\] match no parameter; the paths are: 0.w"):
        groups.labels(_net_params(), ["*.gamma"])


def test_multi_transform_gives_each_group_its_own_rate_and_state():
    params = _net_params()
    labels = groups.labels(params, ["*.beta"])
    opt = optim.multi_transform(
        {"group0": optim.sgd(0.5, momentum=0.9), "default": optim.sgd(0.01)}, labels
    )
    grads = tree.map(np.ones_like, params)
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    for path, u in tree.flatten_with_paths(updates):
        np.testing.assert_allclose(u, -0.5 if path == "1.beta" else -0.01, rtol=1e-6)
    # each group's state covers only its leaves: the momentum trace of the one BatchNorm shift
    (trace_state,) = [s for s in state["group0"] if hasattr(s, "trace")]
    assert len(trace_state.trace) == 1


def test_freeze_is_multi_transform_with_zero_updates_and_keeps_inners_state():
    params = _net_params()
    frozen = tree.map(lambda _: False, params)
    frozen = (tree.map(lambda _: True, params[0]), *frozen[1:])
    opt = optim.freeze(optim.sgd(0.1, momentum=0.9), frozen)
    state = opt.init(params)
    updates, state = opt.update(tree.map(np.ones_like, params), state, params)
    assert all(np.all(u == 0) for u in tree.leaves(updates[0]))
    assert all(np.all(u != 0) for u in tree.leaves(updates[1:]))
    trace_state, _ = state  # sgd's (trace, schedule count): inner's state, unwrapped
    assert len(trace_state.trace) == 3  # the momentum of the three trained leaves only


def test_scaled_and_until_schedules():
    base = optim.schedules.constant(0.1)
    assert groups.scaled(base, 64)(3) == pytest.approx(6.4)
    first = groups.until(base, 10)
    assert first(9) == 0.1 and first(10) == 0.0

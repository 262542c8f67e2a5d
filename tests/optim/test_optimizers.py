"""One table of optimizers, each run against a quadratic and Rosenbrock (the optax way)."""

import attrs
import numpy as np
import pytest
from helpers import assert_unchanged, snapshot

from fcnn import optim, tree
from fcnn.optim import schedules
from fcnn.testing import assert_trees_all_equal_structs


@attrs.frozen(eq=False)
class XY:
    x: np.ndarray
    y: np.ndarray


def quadratic_grad(p):
    # f = (x - 1)^2 + 10 (y + 2)^2
    return XY(2 * (p.x - 1), 20 * (p.y + 2))


def rosenbrock_grad(p):
    # f = (1 - x)^2 + 100 (y - x^2)^2
    return XY(-2 * (1 - p.x) - 400 * p.x * (p.y - p.x**2), 200 * (p.y - p.x**2))


OPTIMIZERS = {
    "sgd": (lambda: optim.sgd(0.02), 1000),
    "momentum": (lambda: optim.sgd(0.01, momentum=0.9), 1000),
    "nesterov": (lambda: optim.sgd(0.01, momentum=0.9, nesterov=True), 1000),
    "adam": (lambda: optim.adam(0.05), 2000),
    "adamw": (lambda: optim.adamw(0.05, weight_decay=1e-4), 2000),
    "sgd_clipped": (lambda: optim.sgd(0.02, clip_norm=1.0), 1500),
    "sgd_cosine": (lambda: optim.sgd(schedules.cosine(0.03, 1500, 0.001), momentum=0.5), 1500),
}
ROSENBROCK = {
    "momentum": lambda: optim.sgd(1e-3, momentum=0.9),
    "nesterov": lambda: optim.sgd(1e-3, momentum=0.9, nesterov=True),
    "adam": lambda: optim.adam(0.01),
    "adamw": lambda: optim.adamw(0.01, weight_decay=0.0),
}


def run(opt, grad_fn, params, steps):
    state = opt.init(params)
    for _ in range(steps):
        updates, new_state = opt.update(grad_fn(params), state, params)
        assert_trees_all_equal_structs(new_state, state)
        params, state = optim.apply_updates(params, updates), new_state
    return params


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_minimizes_a_quadratic(name):
    make, steps = OPTIMIZERS[name]
    p = run(make(), quadratic_grad, XY(np.array([5.0]), np.array([3.0])), steps)
    np.testing.assert_allclose([p.x[0], p.y[0]], [1.0, -2.0], atol=2e-2)


@pytest.mark.parametrize("name", ROSENBROCK)
def test_optimizer_approaches_the_rosenbrock_minimum(name):
    p = run(ROSENBROCK[name](), rosenbrock_grad, XY(np.array([-1.0]), np.array([1.5])), 6000)
    np.testing.assert_allclose([p.x[0], p.y[0]], [1.0, 1.0], atol=0.1)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_update_is_pure_and_keeps_float32(name):
    opt = OPTIMIZERS[name][0]()
    params = XY(np.array([1.5, -2.0], np.float32), np.array([0.5], np.float32))
    grads = quadratic_grad(params)
    state = opt.init(params)
    state, _ = opt.update(grads, state, params)[1], None
    before = snapshot(params, grads, state)
    updates, _ = opt.update(grads, state, params)
    assert_unchanged(before, params, grads, state)
    assert all(u.dtype == np.float32 for u in tree.leaves(updates))
    assert all(p.dtype == np.float32 for p in tree.leaves(optim.apply_updates(params, updates)))


def one_update(opt, g=1.0, p=2.0, steps=2):
    params, grads = XY(np.array([p]), np.array([p])), XY(np.array([g]), np.array([g]))
    state = opt.init(params)
    for _ in range(steps):
        updates, state = opt.update(grads, state, params)
    return float(updates.x[0])


def test_sgd_step_is_minus_lr_times_gradient():
    assert one_update(optim.sgd(0.1), g=3.0) == pytest.approx(-0.3)


def test_momentum_and_nesterov_follow_pytorch_formulas():
    # two steps with g=1, mu=0.9: trace = 1 + 0.9 = 1.9; nesterov update = g + mu*trace = 2.71
    assert one_update(optim.sgd(1.0, momentum=0.9)) == pytest.approx(-1.9)
    assert one_update(optim.sgd(1.0, momentum=0.9, nesterov=True)) == pytest.approx(-2.71)


def test_weight_decay_is_l2_for_sgd_and_decoupled_for_adamw():
    # L2: grad + wd * p = 1 + 0.5 * 2 = 2
    assert one_update(optim.sgd(1.0, weight_decay=0.5), steps=1) == pytest.approx(-2.0)
    # adamw: adam direction (1 on the first step) + wd * p, times lr
    assert one_update(optim.adamw(0.1, weight_decay=0.5), steps=1) == pytest.approx(-0.2, rel=1e-6)
    # adam with L2: the decayed gradient goes through adam, whose first step is sign-like (1)
    assert one_update(optim.adam(0.1, weight_decay=0.5), steps=1) == pytest.approx(-0.1, rel=1e-6)


def test_clipping_scales_to_the_max_norm_and_leaves_small_gradients():
    clip = optim.clip_by_global_norm(1.0)
    grads = XY(np.array([3.0]), np.array([4.0]))
    clipped, _ = clip.update(grads, clip.init(grads))
    assert optim.global_norm(clipped) == pytest.approx(1.0)
    small = XY(np.array([0.3]), np.array([0.4]))
    assert clip.update(small, clip.init(small))[0] is small


def test_learning_rate_schedule_is_followed_per_step():
    opt = optim.sgd(schedules.step_decay(1.0, step_size=2, gamma=0.1))
    params = grads = XY(np.array([1.0]), np.array([1.0]))
    state = opt.init(params)
    seen = []
    for _ in range(4):
        updates, state = opt.update(grads, state, params)
        seen.append(float(updates.x[0]))
    np.testing.assert_allclose(seen, [-1.0, -1.0, -0.1, -0.1])


def test_mismatched_trees_raise_type_error_showing_both_structures():
    opt = optim.sgd(0.1, momentum=0.9)
    params = XY(np.ones(2), np.ones(1))
    state = opt.init(params)
    with pytest.raises(TypeError, match="structures differ"):
        opt.update((np.ones(2),), state, params)


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="momentum"):
        optim.sgd(0.1, momentum=1.5)
    with pytest.raises(ValueError, match="nesterov"):
        optim.sgd(0.1, nesterov=True)
    with pytest.raises(ValueError, match="weight_decay"):
        optim.adamw(0.1, weight_decay=-1)
    decayed = optim.sgd(0.1, weight_decay=0.1)
    with pytest.raises(ValueError, match="needs the current params"):
        decayed.update(XY(np.ones(1), np.ones(1)), decayed.init(None))

"""Data-parallel steps on replicas in threads equal the one-process step."""

import numpy as np
import pytest
from thread_replicas import assert_synchronized_shards_equal_the_whole, run_replicas

from fcnn import models, optim, tree
from fcnn import random as fr
from fcnn.data.transforms import Augmentation, Normalization
from fcnn.distributed import SINGLE
from fcnn.layers import BatchNorm2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU, batchnorm, serial
from fcnn.training.loop import Recipe, evaluate, train_step

NORM = Normalization((100.0,), (60.0,))


def _batch(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 1, 28, 28)).astype(np.uint8), rng.integers(0, 10, n)


def _lenet_trainer(**kw):
    preset = models.get("lenet_mnist")
    recipe = Recipe(
        preset.network,
        optim.sgd(0.05, momentum=0.9, nesterov=True),
        NORM,
        Augmentation(crop_padding=2, hflip=True),
        **kw,
    )
    _, params, state = preset.network.init(fr.key(1), preset.input_shape)
    return recipe, params, state


def _small_bn_trainer(sync):
    net = serial(
        Conv2D(4, 3, padding=1), BatchNorm2D(), ReLU(), MaxPool2D(2),
        Conv2D(6, 3), BatchNorm2D(), ReLU(), Flatten(), Dense(10),
    )  # fmt: skip
    # SGD, not Adam: a conv bias before BatchNorm has a zero gradient up to rounding,
    # which Adam would blow up to full-size steps of noise
    recipe = Recipe(net, optim.sgd(0.1, momentum=0.9), NORM, sync_batchnorm=sync)
    _, params, state = net.init(fr.key(2), (1, 28, 28))
    return recipe, params, state


def _steps(recipe, params, state, replicas, batches):
    opt_state = recipe.optimizer.init(params)
    losses = []
    for i, (images, labels) in enumerate(batches):
        out = train_step(recipe, params, state, opt_state, images, labels, fr.key(10 + i), replicas)
        params, state, opt_state = out.params, out.state, out.opt_state
        losses.append((out.loss, out.correct))
    return params, state, losses


def _assert_trees_close(a, b, rtol=2e-5, atol=2e-6):
    for x, y in zip(tree.leaves(a), tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("class_weights", [None, np.linspace(0.5, 2.0, 10, dtype=np.float32)])
def test_replicas_reach_the_one_process_parameters(size, class_weights):
    recipe, params, state = _lenet_trainer(class_weights=class_weights)
    batches = [_batch(37, seed) for seed in range(3)] + [_batch(2, 9)]  # 37 = uneven shards
    one_params, _, one_losses = _steps(recipe, params, state, SINGLE, batches)
    results = run_replicas(size, lambda r: _steps(recipe, params, state, r, batches))
    for rep_params, _, rep_losses in results:
        _assert_trees_close(rep_params, one_params)
        np.testing.assert_allclose(
            [loss for loss, _ in rep_losses], [loss for loss, _ in one_losses], rtol=1e-5
        )
        assert [c for _, c in rep_losses] == [c for _, c in one_losses]
    # every replica holds bit-identical parameters, not merely close ones
    for other, _, _ in results[1:]:
        for x, y in zip(tree.leaves(other), tree.leaves(results[0][0]), strict=True):
            np.testing.assert_array_equal(x, y)


def test_synchronized_batchnorm_matches_the_whole_batch_and_per_replica_does_not():
    batches = [_batch(32, seed) for seed in range(3)]
    recipe, params, state = _small_bn_trainer(sync=True)
    one_params, one_state, _ = _steps(recipe, params, state, SINGLE, batches)
    synced = run_replicas(2, lambda r: _steps(recipe, params, state, r, batches))
    for rep_params, rep_state, _ in synced:
        _assert_trees_close(rep_params, one_params, rtol=1e-4, atol=1e-5)
        _assert_trees_close(rep_state, one_state, rtol=1e-4, atol=1e-5)

    local, params, state = _small_bn_trainer(sync=False)
    own = run_replicas(2, lambda r: _steps(local, params, state, r, batches))
    assert not tree.allclose(own[0][1], one_state, rtol=1e-3, atol=1e-4)


def test_batchnorm_layer_synchronized_over_shards_equals_the_whole_batch():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 3, 4, 4))
    dy = rng.standard_normal((6, 3, 4, 4))
    _, params, state = batchnorm.init(fr.key(0), (3, 4, 4), dtype=np.float64)
    params = params.__class__(gamma=rng.uniform(0.5, 2, 3), beta=rng.standard_normal(3))

    def step(x, dy):
        y, cache, new_state = batchnorm.forward(params, x, state=state, train=True)
        dx, grads = batchnorm.backward(params, cache, dy)
        return y, dx, grads, new_state

    assert_synchronized_shards_equal_the_whole(step, x, dy)  # 3 shards of 2 images


def test_sharded_evaluation_returns_every_logit_in_order():
    recipe, params, state = _lenet_trainer()
    images, labels = _batch(23)
    one = evaluate(recipe.net, params, state, images, labels, NORM, batch_size=5)
    # Each replica runs GEMMs over other batch sizes, whose BLAS blocking sums in another
    # order: float32 logits then differ by a few units in the last place of the largest
    # logit (3e-6 at |logit| ~10 seen). 64 ulps of that scale allows for it; a logit from
    # the wrong image or a lost one is off by O(1).
    atol = 64 * np.finfo(np.float32).eps * float(np.abs(one.logits).max())
    for result in run_replicas(
        3, lambda r: evaluate(recipe.net, params, state, images, labels, NORM, 5, r)
    ):
        assert result.logits.shape == one.logits.shape
        np.testing.assert_allclose(result.logits, one.logits, rtol=0, atol=atol)
        assert result.loss == pytest.approx(one.loss, rel=1e-5)

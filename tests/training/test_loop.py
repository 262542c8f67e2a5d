"""The pure pieces of training: a step changes nothing it is given, learns, and is
reproducible from its arguments; evaluation reports the loss and accuracy of its logits."""

import numpy as np
import pytest
from helpers import assert_unchanged, snapshot

from fcnn import optim, tree
from fcnn import random as fr
from fcnn.data.transforms import Augmentation, Normalization
from fcnn.layers import BatchNorm2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU, serial
from fcnn.training.loop import Recipe, evaluate, train_step

NORM = Normalization((100.0,), (60.0,))


@pytest.fixture
def setup():
    net = serial(Conv2D(4, 3, padding=1), BatchNorm2D(), ReLU(), MaxPool2D(2), Flatten(), Dense(3))
    recipe = Recipe(net, optim.sgd(0.1, momentum=0.9), NORM, Augmentation(crop_padding=1))
    _, params, state = net.init(fr.key(0), (1, 8, 8))
    rng = np.random.default_rng(0)
    labels = np.arange(12) % 3
    images = rng.integers(0, 60, (12, 1, 8, 8)).astype(np.uint8)
    for i, c in enumerate(labels):  # a bright row per class: learnable
        images[i, 0, 2 + 2 * c] = 250
    return recipe, params, state, images, labels


def test_a_step_changes_nothing_it_is_given(setup):
    recipe, params, state, images, labels = setup
    opt_state = recipe.optimizer.init(params)
    before = snapshot(params, state, opt_state, images, labels)
    out = train_step(recipe, params, state, opt_state, images, labels, fr.key(1))
    assert_unchanged(before, params, state, opt_state, images, labels)
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(tree.leaves(out.params), tree.leaves(params), strict=True)
    )


def test_steps_are_reproducible_and_learn(setup):
    recipe, params, state, images, labels = setup
    opt_state = recipe.optimizer.init(params)
    again = train_step(recipe, params, state, opt_state, images, labels, fr.key(1))
    losses = []
    for i in range(30):
        out = train_step(recipe, params, state, opt_state, images, labels, fr.key(1 + i))
        if i == 0:
            assert out.loss == again.loss and 0 <= out.correct <= len(labels)
        params, state, opt_state = out.params, out.state, out.opt_state
        losses.append(out.loss)
    assert losses[-1] < 0.5 * losses[0]


def test_evaluate_reports_its_logits_loss_and_accuracy(setup):
    recipe, params, state, images, labels = setup
    result = evaluate(recipe.net, params, state, images, labels, NORM, batch_size=5)
    # the logits are the network's own in eval mode on the normalized images, batch by batch
    x = (images.astype(np.float32) - 100.0) / 60.0
    expected, _, _ = recipe.net.apply(params, x, state=state, train=False)
    assert result.labels is labels
    # float32 through batches of 5 against one batch of 12: BLAS may sum in another order
    np.testing.assert_allclose(result.logits, expected, rtol=1e-5, atol=1e-5)
    # the loss and accuracy of those logits, computed independently here
    shifted = expected.astype(np.float64) - expected.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    assert result.loss == pytest.approx(-log_probs[np.arange(12), labels].mean(), rel=1e-5)
    top2 = np.sort(expected, axis=1)[:, -2:]
    assert (top2[:, 1] - top2[:, 0]).min() > 1e-4  # no near-tie the batching could flip
    assert result.accuracy == np.mean(expected.argmax(1) == labels)

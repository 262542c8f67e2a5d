"""Batched eval-mode inference (fcnn.predict): the same logits however the batch is cut or
shared out, equal to the unfolded network on normalized pixels."""

import numpy as np
import pytest

from fcnn import models, tree
from fcnn import random as fr
from fcnn.data.transforms import Normalization, normalize
from fcnn.distributed import threads
from fcnn.explain import features as network_features
from fcnn.predict import SHARD_MULTIPLY_ADDS, _images_per_shard, features, predict_logits

NORM = Normalization((100.0,), (50.0,))


@pytest.fixture(scope="module")
def bn_net():
    preset = models.get("bn_net_mnist")
    _, params, state = preset.network.init(fr.key(0), preset.input_shape)
    rng = np.random.default_rng(1)
    state = tree.map(lambda s: s + rng.uniform(0.1, 0.4, s.shape).astype(s.dtype), state)
    images = rng.integers(0, 256, (37, *preset.input_shape), dtype=np.uint8)
    return preset.network, params, state, images


def test_logits_equal_the_unfolded_network_on_normalized_pixels(bn_net):
    net, params, state, images = bn_net
    expected = net.apply(params, normalize(images, NORM), state=state, train=False)[0]
    got = predict_logits(net, params, state, images, NORM, batch_size=500, workers=1)
    # BatchNorm folded into the conv: float32 in another order, ~1e-6 of the logits' scale
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize(("batch_size", "workers"), [(5, 1), (16, 2), (37, 3)])
def test_batching_and_threads_do_not_change_the_logits(bn_net, batch_size, workers):
    net, params, state, images = bn_net
    whole = predict_logits(net, params, state, images, NORM, batch_size=500, workers=1)
    cut = predict_logits(net, params, state, images, NORM, batch_size=batch_size, workers=workers)
    assert cut.shape == whole.shape == (37, 10)
    np.testing.assert_allclose(cut, whole, rtol=1e-5, atol=1e-5 * np.abs(whole).max())


def test_features_are_the_networks_pooled_features():
    preset = models.get("dermascan_cnn")  # the preset whose features the web app reads
    net = preset.network
    _, params, state = net.init(fr.key(2), preset.input_shape)
    rgb = Normalization((120.0, 110.0, 100.0), (50.0, 55.0, 60.0))
    images = np.random.default_rng(3).integers(0, 256, (6, *preset.input_shape), dtype=np.uint8)
    got = features(net, params, state, images, rgb, batch_size=4, workers=1)
    expected = network_features(net, params, state, normalize(images, rgb))
    assert got.shape == expected.shape and got.ndim == 2
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_shards_carry_enough_arithmetic_to_repay_the_threads():
    lenet, bn = models.get("lenet_mnist"), models.get("bn_net_mnist")
    batch = np.zeros((256, 1, 28, 28), np.uint8)
    # LeNet-5 does 0.42 M multiply-adds per image: a 256-image batch stays in one shard
    assert _images_per_shard(lenet.network, batch) * 2 > 256
    # the BatchNorm net 18 M: shards of a few dozen images
    per_shard = _images_per_shard(bn.network, batch)
    assert threads.MIN_SHARD <= per_shard <= 64
    assert per_shard * 18e6 >= SHARD_MULTIPLY_ADDS * 0.95
    # a batch too small to split is not costed
    assert _images_per_shard(bn.network, batch[:20]) == threads.MIN_SHARD

import threading

import numpy as np
import pytest

from fcnn import models
from fcnn import random as fr
from fcnn.data.transforms import fit_normalization
from fcnn.distributed import threads
from fcnn.predict import features, predict_logits


def test_shards_come_back_in_order_and_cover_the_batch():
    x = np.arange(5 * threads.MIN_SHARD + 3)
    seen = []

    def fn(part):
        seen.append(threading.current_thread().name)
        return part.copy()

    parts = threads.map_shards(fn, x, workers=3)
    assert len(parts) == 3 and all(len(p) >= threads.MIN_SHARD for p in parts)
    np.testing.assert_array_equal(np.concatenate(parts), x)
    assert all(name.startswith("fcnn-shard") for name in seen)


@pytest.mark.parametrize(
    ("rows", "workers", "shards"), [(1, 4, 1), (31, 2, 1), (32, 2, 2), (64, 8, 4)]
)
def test_no_shard_is_smaller_than_the_minimum(rows, workers, shards):
    parts = threads.map_shards(lambda part: part, np.zeros(rows), workers)
    assert len(parts) == shards
    assert sum(len(p) for p in parts) == rows


@pytest.mark.parametrize(("min_rows", "shards"), [(1, 4), (32, 2), (65, 1)])
def test_a_caller_can_ask_for_larger_shards(min_rows, shards):
    parts = threads.map_shards(lambda part: part, np.zeros(64), 4, min_rows=min_rows)
    assert len(parts) == shards  # never below MIN_SHARD rows, whatever min_rows says
    assert sum(len(p) for p in parts) == 64


def test_one_shard_runs_in_the_callers_thread():
    names = threads.map_shards(lambda _: threading.current_thread().name, np.zeros(8), 4)
    assert names == [threading.current_thread().name]


def test_the_blas_runs_on_one_thread_inside_the_block_and_is_restored():
    before = threads.default_workers()
    with threads.one_blas_thread():
        assert threads.default_workers() == 1
    assert threads.default_workers() == before


def test_an_error_in_a_shard_reaches_the_caller():
    def fail_on_second(part):
        if part[0] > 0:
            raise ValueError("shard failed")
        return part

    with pytest.raises(ValueError, match="shard failed"):
        threads.map_shards(fail_on_second, np.arange(64), workers=2)


def _net_and_images(preset, n=70):
    _, params, state = preset.network.init(fr.key(0), preset.input_shape)
    images = fr.generator(fr.key(1)).integers(0, 256, (n, *preset.input_shape)).astype(np.uint8)
    return preset.network, params, state, images, fit_normalization(images)


def test_sharded_inference_equals_one_thread():
    net, params, state, images, norm = _net_and_images(models.get("lenet_mnist"))
    one = predict_logits(net, params, state, images, norm, 64, workers=1)
    two = predict_logits(net, params, state, images, norm, 64, workers=2)
    assert one.shape == two.shape == (70, 10)
    np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-5)


def test_sharded_features_equal_one_thread():
    preset = models.get("dermascan_cnn", widths=(8, 16), image_size=16)
    net, params, state, images, norm = _net_and_images(preset)
    one = features(net, params, state, images, norm, 64, workers=1)
    two = features(net, params, state, images, norm, 64, workers=2)
    assert one.shape == two.shape == (70, 16)
    np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-5)

import numpy as np

from fcnn.training.data import prepare_data, split_seed


def _splits(root, config):
    data = prepare_data(config, root)
    return data.train.images, data.val.images, data.test.images


def test_split_seed_keeps_the_splits_when_the_run_seed_changes(fake_mnist_root, tiny_config):
    limits = ["data.limit_train=400", "data.limit_test=100", "data.val_fraction=0.25"]
    a = tiny_config(*limits, "seed=3", "data.split_seed=5")
    b = tiny_config(*limits, "seed=4", "data.split_seed=5")
    assert split_seed(a) == split_seed(b) == 5
    for x, y in zip(_splits(fake_mnist_root, a), _splits(fake_mnist_root, b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_without_split_seed_the_run_seed_draws_the_splits(fake_mnist_root, tiny_config):
    limits = ["data.limit_train=400", "data.val_fraction=0.25"]
    a, b = tiny_config(*limits, "seed=3"), tiny_config(*limits, "seed=4")
    assert split_seed(a) == 3
    val_a, val_b = _splits(fake_mnist_root, a)[1], _splits(fake_mnist_root, b)[1]
    assert not (val_a.shape == val_b.shape and np.array_equal(val_a, val_b))

import numpy as np
import pytest

from fcnn import random as fr
from fcnn.data.batching import balanced_order, batch_slices, shuffled_order
from fcnn.data.dataset import Dataset, train_val_split


def _data(n=200):
    labels = np.r_[np.zeros(150, np.int64), np.ones(40, np.int64), np.full(10, 2)][:n]
    return Dataset(np.zeros((n, 1, 2, 2), np.uint8), labels, ("a", "b", "c"))


def test_split_is_seeded_stratified_and_disjoint():
    data = Dataset(
        np.arange(200, dtype=np.uint8).reshape(200, 1, 1, 1), _data().labels, ("a", "b", "c")
    )
    train, val = train_val_split(data, 0.1, fr.key(0))
    assert val.class_counts().tolist() == [15, 4, 1]
    assert len(train) + len(val) == 200
    assert not set(train.images.ravel()) & set(val.images.ravel())
    again, _ = train_val_split(data, 0.1, fr.key(0))
    np.testing.assert_array_equal(again.images, train.images)
    with pytest.raises(ValueError, match="fraction"):
        train_val_split(data, 1.0, fr.key(0))


def test_batches_cover_every_index_once():
    order = shuffled_order(10, fr.key(1))
    batches = batch_slices(order, 4)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    assert [len(b) for b in batch_slices(order, 4, drop_last=True)] == [4, 4]


def test_balanced_order_samples_classes_evenly():
    order = balanced_order(np.repeat(_data().labels, 50), fr.key(2), 3)
    counts = np.bincount(np.repeat(_data().labels, 50)[order], minlength=3) / order.size
    np.testing.assert_allclose(counts, 1 / 3, atol=0.02)


def test_dataset_checks_shapes():
    with pytest.raises(ValueError, match="images"):
        Dataset(np.zeros((3, 2, 2)), np.zeros(3), ("a",))

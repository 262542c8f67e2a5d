import numpy as np
import pytest
from helpers import write_ham as _write_ham

from fcnn import random as fr
from fcnn.data import ham10000
from fcnn.data.dataset import split_indices
from fcnn.data.errors import DataError


@pytest.mark.parametrize("layout", ["single", "parts"])
def test_loader_reads_both_layouts_and_reports_what_it_skips(tmp_path, layout):
    n = _write_ham(tmp_path, layout)
    ham = ham10000.load(tmp_path, image_size=(16, 16))
    assert len(ham.data) == n and ham.data.images.shape[1:] == (3, 16, 16)
    assert ham.data.class_counts().tolist() == [12] * 7
    assert any("ISIC_9999999" in s and "missing" in s for s in ham.skipped)
    assert any("unknown dx 'scc'" in s for s in ham.skipped)
    assert np.isnan(ham.data.meta["age"][0]) and ham.data.meta["sex"][1] == "male"
    # the colour encodes the class: preprocessing kept RGB order and the image content
    red = ham.data.images[:, 0].mean(axis=(1, 2))
    assert red[ham.data.labels == 6].mean() > red[ham.data.labels == 0].mean() + 100


def test_decoded_images_are_cached(tmp_path):
    _write_ham(tmp_path)
    first = ham10000.load(tmp_path, image_size=(8, 8))
    cached = list((ham10000.cache_dir() / "ham10000").glob("*.npz"))
    assert len(cached) == 1
    again = ham10000.load(tmp_path, image_size=(8, 8))
    np.testing.assert_array_equal(again.data.images, first.data.images)
    ham10000.load(tmp_path, image_size=(12, 12))  # another size is another cache entry
    assert len(list((ham10000.cache_dir() / "ham10000").glob("*.npz"))) == 2


def test_lesion_grouped_split_has_no_leakage_and_every_class(tmp_path):
    _write_ham(tmp_path, per_class=10)
    train, test, _ = ham10000.load_splits(tmp_path, image_size=(8, 8), test_fraction=0.2)
    train_lesions = set(train.groups.tolist())
    test_lesions = set(test.groups.tolist())
    assert not train_lesions & test_lesions
    assert set(test.labels.tolist()) == set(range(7)) == set(train.labels.tolist())
    assert len(test) == 7 * 2 * 2  # 2 of the 10 lesions per class, 2 images each


def test_split_indices_fractions_and_determinism():
    labels = np.repeat(np.arange(3), 100)
    groups = np.arange(300) // 2
    parts = split_indices(labels, groups, (0.7, 0.15, 0.15), fr.key(3), 3)
    assert sorted(np.concatenate(parts).tolist()) == list(range(300))
    # per class 50 groups of 2: cuts at round(35) and round(42.5) = 42 -> 35/7/8 groups
    assert [len(p) for p in parts] == [210, 42, 48]
    group_sets = [set(groups[p].tolist()) for p in parts]
    assert sum(len(g) for g in group_sets) == len(set().union(*group_sets)) == 150
    again = split_indices(labels, groups, (0.7, 0.15, 0.15), fr.key(3), 3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    with pytest.raises(ValueError, match="sum to 1"):
        split_indices(labels, None, (0.5, 0.4), fr.key(0))


def test_bad_metadata_is_explained(tmp_path):
    (tmp_path / "ham10000").mkdir()
    (tmp_path / "ham10000" / "HAM10000_metadata.csv").write_text("image,label\nx,nv\n")
    with pytest.raises(DataError, match="missing columns"):
        ham10000.load(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        ham10000.load(tmp_path / "nowhere")


@pytest.mark.data
def test_real_ham10000_subset(real_data_root):
    ham = ham10000.load(real_data_root, image_size=(64, 64))
    assert len(ham.data) == 4786 and ham.skipped == ()
    assert ham.data.class_counts().tolist() == [146, 211, 466, 48, 393, 3458, 64]

import gzip

import numpy as np
import pytest

from fcnn.data import mnist
from fcnn.data.errors import DataError
from fcnn.data.idx import write_idx


def _write(folder, n_train=12, n_test=4, labels_train=None):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    labels_train = np.arange(n_train) % 10 if labels_train is None else labels_train
    (folder / "train-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(write_idx(rng.integers(0, 255, (n_train, 28, 28))))
    )
    (folder / "train-labels-idx1-ubyte").write_bytes(write_idx(labels_train))
    (folder / "t10k-images-idx3-ubyte").write_bytes(
        write_idx(rng.integers(0, 255, (n_test, 28, 28)))
    )
    (folder / "t10k-labels-idx1-ubyte").write_bytes(write_idx(np.arange(n_test)))


def test_reads_gzip_and_raw_files(tmp_path):
    _write(tmp_path / "mnist")
    train, test = mnist.load(tmp_path, allow_download=False, verify=False)
    assert train.images.shape == (12, 1, 28, 28) and train.images.dtype == np.uint8
    assert test.labels.tolist() == [0, 1, 2, 3] and train.class_names[3] == "3"


def test_checksum_mismatch_is_reported_with_the_file(tmp_path):
    _write(tmp_path / "mnist")
    with pytest.raises(DataError, match="checksum mismatch") as info:
        mnist.load(tmp_path, allow_download=False)
    assert "train-images-idx3-ubyte.gz" in str(info.value)


def test_wrong_counts_are_an_error(tmp_path):
    _write(tmp_path / "mnist", labels_train=np.arange(11) % 10)
    with pytest.raises(DataError, match="12 images .* but 11 labels"):
        mnist.load(tmp_path, allow_download=False, verify=False)


@pytest.mark.data
def test_real_mnist_matches_its_readme(real_data_root):
    train, test = mnist.load(real_data_root, allow_download=False)
    assert len(train) == 60_000 and len(test) == 10_000
    counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert train.class_counts().tolist() == counts

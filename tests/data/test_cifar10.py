import io
import os
import pickle
import struct
import tarfile

import numpy as np
import pytest
from PIL import Image

from fcnn.data import cifar10
from fcnn.data.errors import DataError
from fcnn.data.imagefolder import load_image_folder


class _Py2Pickler(pickle._Pickler):
    """Pickles as Python 2's cPickle wrote the real batches: str and bytes as BINSTRING
    opcodes (read back as bytes with encoding="bytes"), numpy under numpy.core."""

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    def save_str(self, obj):
        self.save_bytes(obj.encode("latin1"))

    def save_global(self, obj, name=None):
        if getattr(obj, "__module__", "") == "numpy._core.multiarray":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n" + obj.__name__.encode() + b"\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def _py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def _batch(n, seed):
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"training batch 1 of 5",
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }


def _write_batches(folder):
    """The real format: protocol-2 pickles of dicts with bytes keys, plus batches.meta."""
    folder.mkdir(parents=True)
    batches = {}
    for i, name in enumerate([*cifar10.TRAIN_BATCHES, *cifar10.TEST_BATCHES]):
        batches[name] = _batch(4, i)
        (folder / name).write_bytes(_py2_pickle(batches[name]))
    meta = {b"label_names": [c.encode() for c in cifar10.CLASS_NAMES], b"num_cases_per_batch": 4}
    (folder / "batches.meta").write_bytes(_py2_pickle(meta))
    return batches


def test_fixture_uses_the_python2_opcodes_of_the_real_files():
    data = _py2_pickle(_batch(2, 0))
    assert b"cnumpy.core.multiarray\n_reconstruct" in data and b"_codecs" not in data


def test_reads_extracted_batches(tmp_path):
    batches = _write_batches(tmp_path / "cifar10" / "cifar-10-batches-py")
    train, test = cifar10.load(tmp_path, allow_download=False)
    assert train.images.shape == (20, 3, 32, 32) and len(test) == 4
    first = batches["data_batch_1"][b"data"][0]
    np.testing.assert_array_equal(train.images[0, 0].reshape(-1), first[:1024])  # red plane first
    assert train.labels[:4].tolist() == batches["data_batch_1"][b"labels"]


def test_reads_the_official_archive(tmp_path):
    src = tmp_path / "src" / "cifar-10-batches-py"
    _write_batches(src)
    (tmp_path / "cifar10").mkdir()
    with tarfile.open(tmp_path / "cifar10" / cifar10.ARCHIVE, "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    train, test = cifar10.load(tmp_path, allow_download=False)
    assert len(train) == 20 and len(test) == 4


def test_restricted_unpickler_refuses_code():
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(DataError, match="refusing to load"):
        cifar10.read_batch(pickle.dumps({b"data": Evil()}, protocol=2), "evil_batch")


def test_malformed_batch_is_explained():
    bad = _py2_pickle({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    with pytest.raises(DataError, match=r"expected data \(N, 3072\)"):
        cifar10.read_batch(bad, "data_batch_1")


def _write_folder(root, per_class=2, size=32):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in cifar10.CLASS_NAMES:
            d = root / "cifar10" / split / name
            d.mkdir(parents=True)
            for i in range(per_class):
                arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"{i:04d}.png")


def test_image_folder_layout_and_cache(tmp_path):
    _write_folder(tmp_path)
    train, test = cifar10.load(tmp_path, allow_download=False)
    assert train.images.shape == (20, 3, 32, 32) and train.labels.tolist()[:3] == [0, 0, 1]
    cached = list((cifar10.cache_dir() / "imagefolder").glob("*.npz"))
    assert len(cached) == 2
    again, _ = cifar10.load(tmp_path, allow_download=False)
    np.testing.assert_array_equal(again.images, train.images)
    # editing the folder invalidates the cache
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "cifar10/train/cat/0000.png")
    edited, _ = cifar10.load(tmp_path, allow_download=False)
    assert edited.images[6].sum() == 0
    assert len(list((cifar10.cache_dir() / "imagefolder").glob("*.npz"))) == 3


def test_unreadable_image_names_the_file(tmp_path):
    _write_folder(tmp_path, per_class=1)
    bad = tmp_path / "cifar10/train/dog/0000.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match="0000.png: unreadable image"):
        load_image_folder(tmp_path / "cifar10/train")


def test_missing_everything_without_download(tmp_path):
    with pytest.raises(DataError, match="CIFAR-10 was not found"):
        cifar10.load(tmp_path, allow_download=False)


@pytest.mark.data
def test_real_cifar10_image_folder(real_data_root):
    train, test = cifar10.load(real_data_root, allow_download=False)
    assert train.images.shape == (50_000, 3, 32, 32) and len(test) == 10_000
    assert train.class_counts().tolist() == [5000] * 10

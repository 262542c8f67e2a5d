"""CIFAR-10 from the official python batches or from an image-folder copy.

Layouts looked for under ``<root>/cifar10`` (and the download cache), first found wins:

- ``train/<class>/*.jpg`` and ``test/<class>/*.jpg`` (an image folder);
- ``cifar-10-batches-py/`` (the extracted official archive);
- ``cifar-10-python.tar.gz`` (the official archive itself).

When none is there, the archive is downloaded (SHA-256 checked, atomic) into
the cache. The batches are python pickles: they are read with a restricted
unpickler that admits only the few numpy reconstructors those files contain,
so a tampered file cannot run code.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from fcnn.data.dataset import Dataset
from fcnn.data.download import Progress, download
from fcnn.data.errors import DataError
from fcnn.data.imagefolder import load_image_folder
from fcnn.data.paths import cache_dir

__all__ = ["ARCHIVE_SHA256", "ARCHIVE_URLS", "CLASS_NAMES", "load", "read_batch"]

CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_URLS = ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)
ARCHIVE_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    ("__builtin__", "object"),
    ("builtins", "object"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")
        return super().find_class(module, name)


def read_batch(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> images (N, 3, 32, 32) uint8 and labels (N,) int64."""
    try:
        batch = _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{name}: not a CIFAR-10 python batch ({exc})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{name}: a CIFAR-10 batch is a dict with b'data' and b'labels'")
    flat = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if flat.ndim != 2 or flat.shape[1] != 3072 or flat.shape[0] != labels.shape[0]:
        raise DataError(
            f"{name}: expected data (N, 3072) and N labels, got {flat.shape} and {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{name}: labels must lie in 0..9")
    return flat.reshape(-1, 3, 32, 32), labels  # (N, 3072) -> (N, 3, 32, 32), channel-major rows


def _read_members(get: Any, names: tuple[str, ...], where: str) -> tuple[np.ndarray, np.ndarray]:
    parts = [read_batch(get(n), f"{where}/{n}") for n in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _from_dir(folder: Path) -> tuple[Dataset, Dataset]:
    def get(name: str) -> bytes:
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path} is missing from the extracted CIFAR-10 batches")
        return path.read_bytes()

    return _datasets(get, str(folder))


def _from_archive(path: Path) -> tuple[Dataset, Dataset]:
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}

            def get(name: str) -> bytes:
                if name not in members:
                    raise DataError(f"{path}: the archive has no {name}")
                f = tar.extractfile(members[name])
                assert f is not None
                return f.read()

            return _datasets(get, str(path))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(
            f"{path}: unreadable archive ({exc}); delete it and fetch it again"
        ) from None


def _datasets(get: Any, where: str) -> tuple[Dataset, Dataset]:
    train = _read_members(get, TRAIN_BATCHES, where)
    test = _read_members(get, TEST_BATCHES, where)
    return Dataset(*train, CLASS_NAMES), Dataset(*test, CLASS_NAMES)


def load(
    root: Path,
    *,
    allow_download: bool = True,
    progress: Progress | None = None,
    urls: tuple[str, ...] = ARCHIVE_URLS,
) -> tuple[Dataset, Dataset]:
    """``(train, test)`` CIFAR-10 as (N, 3, 32, 32) uint8 images."""
    folders = [Path(root) / "cifar10", cache_dir() / "data" / "cifar10"]
    for folder in folders:
        if (folder / "train").is_dir() and (folder / "test").is_dir():
            train = load_image_folder(folder / "train", class_names=CLASS_NAMES, size=(32, 32))
            test = load_image_folder(folder / "test", class_names=CLASS_NAMES, size=(32, 32))
            return train, test
        if (folder / "cifar-10-batches-py").is_dir():
            return _from_dir(folder / "cifar-10-batches-py")
        if (folder / ARCHIVE).is_file():
            return _from_archive(folder / ARCHIVE)
    if not allow_download:
        raise DataError(_missing_message(folders))
    try:
        path = download(list(urls), folders[1] / ARCHIVE, sha256=ARCHIVE_SHA256, progress=progress)
    except DataError as exc:
        raise DataError(f"{exc}\n{_missing_message(folders)}") from None
    return _from_archive(path)


def _missing_message(folders: list[Path]) -> str:
    return (
        f"CIFAR-10 was not found in {folders[0]} or {folders[1]}. Put train/<class>/ and "
        f"test/<class>/ image folders, cifar-10-batches-py/, or {ARCHIVE} in {folders[0]}, "
        "or point --data-dir / FCNN_DATA at a folder that holds cifar10/."
    )

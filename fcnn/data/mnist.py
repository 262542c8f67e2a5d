"""MNIST from its four IDX files (gzip or raw), verified by SHA-256, downloaded when missing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from fcnn.data.dataset import Dataset
from fcnn.data.download import Progress, download
from fcnn.data.errors import DataError
from fcnn.data.idx import parse_idx, read_maybe_gzip
from fcnn.data.paths import cache_dir

__all__ = ["FILES", "MIRRORS", "load"]

# SHA-256 of the *decompressed* files, which are the same on every mirror.
FILES = {
    "train_images": (
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    "train_labels": (
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    "test_images": (
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    "test_labels": (
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
CLASS_NAMES = tuple(str(d) for d in range(10))
# the decompressed size of each file (header and data), the most a file may inflate to
SIZES = {
    "train-images-idx3-ubyte": 47_040_016,
    "train-labels-idx1-ubyte": 60_008,
    "t10k-images-idx3-ubyte": 7_840_016,
    "t10k-labels-idx1-ubyte": 10_008,
}


def _size_of(path: Path) -> int | None:
    """The decompressed size of the MNIST file ``path`` is (or is being downloaded as)."""
    return next((size for name, size in SIZES.items() if name in path.name), None)


def _gunzip(raw: Path, out: Path) -> None:
    out.write_bytes(read_maybe_gzip(raw, _size_of(out)))


def _find(folders: list[Path], name: str) -> Path | None:
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _read_verified(path: Path, sha256: str) -> np.ndarray:
    data = read_maybe_gzip(path, _size_of(path))
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise DataError(
            f"{path}: checksum mismatch (sha256 of the decompressed content is {got}, "
            f"expected {sha256}); the file is corrupt or not MNIST. Delete it and fetch it again."
        )
    return parse_idx(data, str(path))


def load(
    root: Path,
    *,
    allow_download: bool = True,
    mirrors: tuple[str, ...] | None = None,
    verify: bool = True,
    progress: Progress | None = None,
) -> tuple[Dataset, Dataset]:
    """``(train, test)`` from ``root/mnist`` (or the download cache), downloading missing files.

    Images come back as (N, 1, 28, 28) uint8, labels as int64.
    """
    folders = [Path(root) / "mnist", cache_dir() / "data" / "mnist"]
    arrays = {}
    for key, (name, sha) in FILES.items():
        path = _find(folders, name)
        if path is None:
            if not allow_download:
                raise DataError(_missing_message(folders, name))
            try:
                path = download(
                    [m + name + ".gz" for m in (MIRRORS if mirrors is None else mirrors)],
                    folders[1] / name,
                    sha256=sha,
                    transform=_gunzip,
                    progress=progress,
                )
            except DataError as exc:
                raise DataError(f"{exc}\n{_missing_message(folders, name)}") from None
        arrays[key] = (
            _read_verified(path, sha)
            if verify
            else parse_idx(read_maybe_gzip(path, _size_of(path)), str(path))
        )
    return (
        _dataset(arrays["train_images"], arrays["train_labels"], "train"),
        _dataset(arrays["test_images"], arrays["test_labels"], "test"),
    )


def _dataset(images: np.ndarray, labels: np.ndarray, split: str) -> Dataset:
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DataError(
            f"MNIST {split}: {images.shape[0]} images of shape {images.shape[1:]} "
            f"but {labels.shape[0]} labels"
        )
    if labels.size and labels.max() > 9:
        raise DataError(f"MNIST {split}: labels must be digits 0-9, found {labels.max()}")
    return Dataset(
        images[:, None, :, :], labels.astype(np.int64), CLASS_NAMES
    )  # (N,H,W)->(N,1,H,W)


def _missing_message(folders: list[Path], name: str) -> str:
    names = ", ".join(n for n, _ in FILES.values())
    return (
        f"MNIST file {name} (or {name}.gz) was not found in {folders[0]} or {folders[1]}. "
        f"Put the four files ({names}, gzip or raw) in {folders[0]}, or point --data-dir / "
        "FCNN_DATA at a folder that holds mnist/."
    )

"""A data set given as arrays in one ``.npz`` file (``dataset: arrays``, ``data.path``)::

    np.savez("mine.npz", x_train=x, y_train=y, x_test=xt, y_test=yt,
             class_names=np.array(["cat", "dog"]))

``x_*``: uint8 pixels, (N, C, H, W), or (N, H, W) for one channel; ``y_*``: integer class
indices (N,); ``x_test``/``y_test`` optional (both or neither: without them a seeded,
class-stratified test split is made); ``class_names`` optional (default "0", "1", ...). The
file is read with ``allow_pickle=False`` and its members are checked before any is read.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from fcnn.data.dataset import Dataset, split_off_test
from fcnn.data.errors import DataError

__all__ = ["MEMBERS", "load_splits"]

MEMBERS = ("x_train", "y_train", "x_test", "y_test", "class_names")


def _members(path: Path) -> set[str]:
    try:
        with zipfile.ZipFile(path) as z:
            return {name.removesuffix(".npy") for name in z.namelist()}
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not an .npz file of arrays ({exc})") from None


def _images(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[:, None]  # (N, H, W) -> (N, 1, H, W): one channel
    if x.ndim != 4 or min(x.shape[1:], default=0) < 1:
        raise DataError(f"{where} must be images (N, C, H, W) or (N, H, W), got shape {x.shape}")
    if x.dtype != np.uint8:
        raise DataError(
            f"{where} must be uint8 pixels 0..255, got {x.dtype}; convert images in 0..1 "
            "with (x * 255).round().astype(np.uint8)"
        )
    return x


def _labels(y: np.ndarray, n: int, where: str) -> np.ndarray:
    if y.ndim != 1 or y.shape[0] != n or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where} must be {n} integer class indices (N,), got {y.dtype} {y.shape}")
    if n and y.min() < 0:
        raise DataError(f"{where} holds a negative class index ({y.min()})")
    return y.astype(np.int64)


def load_splits(
    path: Path,
    *,
    image_size: tuple[int, int] | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[Dataset, Dataset]:
    """``(train, test)`` from the arrays in ``path`` (see the module docstring); DataError
    says what is wrong with a file that does not fit."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data.path {path} does not exist")
    members = _members(path)
    unexpected = sorted(members - set(MEMBERS))
    if unexpected or not {"x_train", "y_train"} <= members:
        raise DataError(
            f"{path}: an arrays file holds x_train, y_train and optionally x_test, y_test, "
            f"class_names; it has {sorted(members)}"
        )
    if ("x_test" in members) != ("y_test" in members):
        raise DataError(f"{path}: give x_test and y_test together, or neither")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in members}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: an array cannot be read ({exc})") from None
    x = _images(arrays["x_train"], f"{path}: x_train")
    y = _labels(arrays["y_train"], x.shape[0], f"{path}: y_train")
    test = None
    if "x_test" in arrays:
        xt = _images(arrays["x_test"], f"{path}: x_test")
        yt = _labels(arrays["y_test"], xt.shape[0], f"{path}: y_test")
        if xt.shape[1:] != x.shape[1:]:
            raise DataError(f"{path}: x_test images are {xt.shape[1:]}, x_train's {x.shape[1:]}")
        test = (xt, yt)
    k = int(max([y.max(initial=0)] + ([test[1].max(initial=0)] if test else []))) + 1
    names = _class_names(arrays.get("class_names"), k, path)
    if image_size is not None and tuple(image_size) != x.shape[2:]:
        raise DataError(
            f"{path}: the images are {x.shape[2]}x{x.shape[3]}, data.image_size asks for "
            f"{image_size[0]}x{image_size[1]}; arrays are not resized: leave image_size out"
        )
    train = Dataset(x, y, names)
    if test is None:
        return split_off_test(train, test_fraction, seed)
    return train, Dataset(*test, names)


def _class_names(raw: np.ndarray | None, k: int, path: Path) -> tuple[str, ...]:
    if raw is None:
        return tuple(str(i) for i in range(k))
    if raw.ndim != 1 or raw.dtype.kind not in "US":
        raise DataError(f"{path}: class_names must be a 1-D array of strings, got {raw.dtype}")
    names = tuple(str(v) for v in raw.tolist())
    if len(names) < k or len(set(names)) != len(names):
        raise DataError(
            f"{path}: class_names must name each of the {k} classes the labels use, once; "
            f"got {len(names)} names"
        )
    return names

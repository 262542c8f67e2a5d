"""Image-folder data sets (``<split>/<class>/*.jpg``), decoded once and cached as ``.npz``.

The cache key covers the folder's absolute path, every file's name, size and
modification time, and the requested image size, so an edited folder is
decoded again. Cache files live in the user cache folder and are written
atomically; the data folder itself is only read.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fcnn.data.dataset import Dataset, split_off_test
from fcnn.data.errors import DataError
from fcnn.data.paths import cache_dir
from fcnn.data.preprocess import prepare_image
from fcnn.io import atomic_write

__all__ = ["IMAGE_SUFFIXES", "decode_image", "load_image_folder", "load_splits"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")


def decode_image(path: Path, size: tuple[int, int] | None, mode: str) -> np.ndarray:
    """One image as (C, H, W) uint8 in ``mode`` ("RGB" or "L"), resized to ``size`` (H, W)
    (its own size when None), through :func:`fcnn.data.preprocess.prepare_image`."""
    try:
        with Image.open(path) as img:
            target = size if size is not None else (img.height, img.width)
            return prepare_image(img, target, 1 if mode == "L" else 3)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DataError(f"{path}: unreadable image ({exc})") from None


def class_folders(folder: Path) -> tuple[str, ...]:
    """The sorted names of ``folder``'s sub-folders, hidden ones (``.git``) left out."""
    return tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name[0] != "."))


def _listing(folder: Path, class_names: tuple[str, ...]) -> list[tuple[Path, int, os.stat_result]]:
    files = []
    for label, name in enumerate(class_names):
        with os.scandir(folder / name) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_file() and entry.name.lower().endswith(IMAGE_SUFFIXES):
                    files.append((Path(entry.path), label, entry.stat()))
    return files


def _cache_key(folder: Path, files, size, mode) -> str:
    digest = hashlib.sha256(f"{folder.resolve()}|{size}|{mode}|v2".encode())
    for path, label, st in files:
        digest.update(f"{path.name}|{label}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def load_image_folder(
    folder: Path,
    *,
    class_names: tuple[str, ...] | None = None,
    size: tuple[int, int] | None = None,
    mode: str = "RGB",
    use_cache: bool = True,
    workers: int = 4,
) -> Dataset:
    """All images under ``folder/<class>/`` as a :class:`Dataset`.

    ``class_names`` fixes the label order (default: the sorted sub-folder names).
    Images of a different size are resized to ``size`` (required when sizes vary).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist")
    if class_names is None:
        class_names = class_folders(folder)
    missing = [c for c in class_names if not (folder / c).is_dir()]
    if not class_names or missing:
        raise DataError(f"{folder}: expected one sub-folder per class, missing {missing or 'all'}")
    files = _listing(folder, class_names)
    if not files:
        raise DataError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) found")
    cache_file = cache_dir() / "imagefolder" / f"{_cache_key(folder, files, size, mode)}.npz"
    if use_cache and cache_file.is_file():
        try:
            with np.load(cache_file, allow_pickle=False) as z:
                return Dataset(z["images"], z["labels"], class_names)
        except (OSError, KeyError, ValueError):
            pass  # a damaged cache is rebuilt below
    with ThreadPoolExecutor(max_workers=workers) as pool:
        decoded = list(pool.map(lambda f: decode_image(f[0], size, mode), files))
    shapes = {a.shape for a in decoded}
    if len(shapes) > 1:
        raise DataError(
            f"{folder}: images have different sizes {sorted(shapes)[:3]}...; resize them on "
            "loading: data.image_size: [H, W] in a config, size=(H, W) in a script"
        )
    images = np.stack(decoded)  # (N, C, H, W)
    labels = np.array([label for _, label, _ in files], dtype=np.int64)
    if use_cache:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(cache_file) as tmp:
            np.savez(tmp, images=images, labels=labels)
    return Dataset(images, labels, class_names)


def load_splits(
    root: Path,
    *,
    size: tuple[int, int] | None = None,
    mode: str = "RGB",
    test_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[Dataset, Dataset]:
    """``(train, test)`` from a user's folder of images: ``root/train/<class>/*`` with an
    optional ``root/test/<class>/*`` (the same classes), or ``root/<class>/*``; without a test
    folder, a seeded class-stratified ``test_fraction`` is split off. Class names are the
    folder names, sorted; JPEG, PNG, WebP (and BMP, GIF, TIFF) are read, other files skipped."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data.root {root} does not exist or is not a folder")
    train_dir = root / "train" if (root / "train").is_dir() else root
    names = class_folders(train_dir)
    if not names:
        raise DataError(
            f"{train_dir} has no class folders: put each class's images in a folder of its "
            f"own, {train_dir}/<class>/*.jpg"
        )
    if len(names) == 1:
        raise DataError(f"{train_dir} has one class folder ({names[0]}); a classifier needs two")
    train = load_image_folder(train_dir, class_names=names, size=size, mode=mode)
    if train_dir != root and (root / "test").is_dir():
        extra = sorted(set(class_folders(root / "test")) - set(names))
        if extra:
            raise DataError(f"{root / 'test'} has classes that train/ lacks: {extra}")
        test = load_image_folder(root / "test", class_names=names, size=size, mode=mode)
        if test.image_shape != train.image_shape:
            raise DataError(
                f"{root}: test images are {test.image_shape}, train images {train.image_shape}; "
                "set data.image_size to resize both"
            )
        return train, test
    return split_off_test(train, test_fraction, seed)

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

from fcnn.data.dataset import Dataset
from fcnn.data.errors import DataError
from fcnn.data.paths import cache_dir
from fcnn.data.preprocess import prepare_image
from fcnn.io import atomic_write

__all__ = ["IMAGE_SUFFIXES", "decode_image", "load_image_folder"]

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
        class_names = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))
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
            f"{folder}: images have different sizes {sorted(shapes)[:3]}...; pass size="
        )
    images = np.stack(decoded)  # (N, C, H, W)
    labels = np.array([label for _, label, _ in files], dtype=np.int64)
    if use_cache:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(cache_file) as tmp:
            np.savez(tmp, images=images, labels=labels)
    return Dataset(images, labels, class_names)

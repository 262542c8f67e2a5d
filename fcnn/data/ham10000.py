"""HAM10000 dermatoscopic images: metadata, images, lesion-grouped splits.

Reads ``<root>/ham10000/HAM10000_metadata.csv`` (columns ``lesion_id, image_id, dx,
dx_type, age, sex, localization``) and the images from ``HAM10000_images/`` or the
original ``HAM10000_images_part_1/`` + ``HAM10000_images_part_2/``. Rows with an
unknown ``dx`` and rows whose image is missing are reported (see
:attr:`HamData.skipped`) and skipped, never silently. Images go through
:func:`fcnn.data.preprocess.prepare_image`; the decoded, resized arrays are cached
in the user cache folder.
"""

from __future__ import annotations

import csv
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import numpy as np

from fcnn.data.dataset import Dataset, split_off_test
from fcnn.data.errors import DataError
from fcnn.data.imagefolder import decode_image
from fcnn.data.paths import cache_dir
from fcnn.io import atomic_write

__all__ = ["CLASS_NAMES", "HamData", "image_index", "load", "load_splits", "read_metadata"]

CLASS_NAMES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
IMAGE_FOLDERS = ("HAM10000_images", "HAM10000_images_part_1", "HAM10000_images_part_2")
COLUMNS = ("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization")


@attrs.frozen
class Row:
    lesion_id: str
    image_id: str
    dx: str
    age: float  # NaN when unknown
    sex: str
    localization: str


@attrs.frozen(eq=False)
class HamData:
    """All usable images as one :class:`Dataset` (groups = lesions), and what was skipped."""

    data: Dataset
    skipped: tuple[str, ...]  # one human-readable line per skipped row


def read_metadata(path: Path) -> tuple[list[Row], list[str]]:
    """The rows with a known ``dx``, and a message for each row skipped."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path}: missing columns {missing}; expected {', '.join(COLUMNS)}")
            rows, skipped = [], []
            for line, rec in enumerate(reader, start=2):
                if rec["dx"] not in CLASS_NAMES:
                    skipped.append(
                        f"{path.name} line {line}: unknown dx {rec['dx']!r} "
                        f"(image {rec['image_id']})"
                    )
                    continue
                try:
                    age = float(rec["age"]) if rec["age"] else float("nan")
                except ValueError:
                    age = float("nan")
                sex, site = rec["sex"] or "unknown", rec["localization"] or "unknown"
                rows.append(Row(rec["lesion_id"], rec["image_id"], rec["dx"], age, sex, site))
    except FileNotFoundError:
        raise DataError(f"HAM10000 metadata {path} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: unreadable metadata ({exc})") from None
    return rows, skipped


def image_index(folder: Path) -> dict[str, Path]:
    """Each image's file by image id, over the folders HAM10000 is shipped in (one folder, or
    the two parts of the original download) under ``folder``."""
    index: dict[str, Path] = {}
    for sub in IMAGE_FOLDERS:
        d = folder / sub
        if d.is_dir():
            with os.scandir(d) as entries:
                for e in entries:
                    stem, ext = os.path.splitext(e.name)
                    if ext.lower() in (".jpg", ".jpeg", ".png") and e.is_file():
                        index[stem] = Path(e.path)
    return index


def load(root: Path, *, image_size: tuple[int, int] = (64, 64), use_cache: bool = True) -> HamData:
    """Every usable HAM10000 image under ``root/ham10000``, resized to ``image_size``."""
    folder = Path(root) / "ham10000"
    rows, skipped = read_metadata(folder / "HAM10000_metadata.csv")
    index = image_index(folder)
    if not index:
        raise DataError(
            f"no HAM10000 images found in {folder}: expected {IMAGE_FOLDERS[0]}/ or "
            f"{IMAGE_FOLDERS[1]}/ and {IMAGE_FOLDERS[2]}/"
        )
    present = []
    for row in rows:
        if row.image_id in index:
            present.append(row)
        else:
            skipped.append(f"image {row.image_id} (lesion {row.lesion_id}) is listed but missing")
    if not present:
        raise DataError(f"{folder}: none of the metadata's images were found")
    paths = [index[r.image_id] for r in present]
    digest = hashlib.sha256(f"{folder.resolve()}|{image_size}|v2".encode())
    for r, p in zip(present, paths, strict=True):
        st = p.stat()
        digest.update(f"{r.image_id}|{r.dx}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    cache_file = cache_dir() / "ham10000" / f"{digest.hexdigest()[:24]}.npz"
    images = None
    if use_cache and cache_file.is_file():
        try:
            with np.load(cache_file, allow_pickle=False) as z:
                images = z["images"]
        except (OSError, KeyError, ValueError):
            images = None
    if images is None or images.shape[0] != len(present):
        with ThreadPoolExecutor(max_workers=4) as pool:
            images = np.stack(list(pool.map(lambda p: decode_image(p, image_size, "RGB"), paths)))
        if use_cache:
            with atomic_write(cache_file) as tmp, open(tmp, "wb") as f:
                np.savez(f, images=images)
    lesions = {lid: i for i, lid in enumerate(sorted({r.lesion_id for r in present}))}
    data = Dataset(
        images,
        np.array([CLASS_NAMES.index(r.dx) for r in present], dtype=np.int64),
        CLASS_NAMES,
        groups=np.array([lesions[r.lesion_id] for r in present], dtype=np.int64),
        meta={
            "image_id": np.array([r.image_id for r in present]),
            "age": np.array([r.age for r in present], dtype=np.float64),
            "sex": np.array([r.sex for r in present]),
            "localization": np.array([r.localization for r in present]),
        },
    )
    return HamData(data, tuple(skipped))


def load_splits(
    root: Path,
    *,
    image_size: tuple[int, int] = (64, 64),
    test_fraction: float = 0.15,
    seed: int = 0,
) -> tuple[Dataset, Dataset, tuple[str, ...]]:
    """``(train_full, test, skipped)``: a seeded, lesion-grouped, class-stratified test split.

    The validation split is cut from ``train_full`` by the training pipeline with the
    same grouping (70/15/15 with the default fractions).
    """
    ham = load(root, image_size=image_size)
    train, test = split_off_test(ham.data, test_fraction, seed)
    return train, test, ham.skipped

"""Small test helpers shared across the suite."""

from __future__ import annotations

import copy
import io

import numpy as np
from PIL import Image

from fcnn.data import ham10000
from fcnn.testing import assert_trees_all_equal


def snapshot(*trees):
    """Deep copies of trees, to compare against after a call that must not mutate them."""
    return copy.deepcopy(trees)


def assert_unchanged(before, *after):
    """Every tree of ``after`` equals (bit for bit) its snapshot in ``before``."""
    for b, a in zip(before, after, strict=True):
        assert_trees_all_equal(b, a)


HEADER = "lesion_id,image_id,dx,dx_type,age,sex,localization\n"


def write_ham(root, layout="single", per_class=6, images_per_lesion=2):
    """A tiny HAM10000 folder: each class a colour, lesions of several images, one listed
    image missing and one row of an unknown class. Returns the number of usable images."""
    folder = root / "ham10000"
    subs = (
        ["HAM10000_images"]
        if layout == "single"
        else ["HAM10000_images_part_1", "HAM10000_images_part_2"]
    )
    for s in subs:
        (folder / s).mkdir(parents=True)
    rows, n = [], 0
    rng = np.random.default_rng(0)
    for c, dx in enumerate(ham10000.CLASS_NAMES):
        for lesion in range(per_class):
            for _ in range(images_per_lesion):
                image_id = f"ISIC_{n:07d}"
                color = np.array([30 * c, 255 - 30 * c, 100], np.uint8)
                arr = np.clip(rng.normal(color, 5, (40, 50, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(arr).save(folder / subs[n % len(subs)] / f"{image_id}.jpg")
                age = "" if n % 7 == 0 else str(20 + 5 * (n % 10))
                rows.append(
                    f"HAM_{c:02d}{lesion:03d},{image_id},{dx},histo,{age},"
                    f"{'male' if n % 2 else 'female'},back\n"
                )
                n += 1
    rows.append("HAM_9999999,ISIC_9999999,nv,histo,40,male,back\n")  # listed, image missing
    rows.append("HAM_9999998,ISIC_0000000,scc,histo,40,male,back\n")  # unknown class
    (folder / "HAM10000_metadata.csv").write_text(HEADER + "".join(rows))
    return n


def image_bytes(arr: np.ndarray, fmt: str = "JPEG", mode: str | None = None, **save) -> bytes:
    img = Image.fromarray(arr) if mode is None else Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


def lesion_like(seed: int = 0, size: int = 64) -> np.ndarray:
    """A colourful image like the fake training data (class 2's colour, with noise)."""
    rng = np.random.default_rng(seed)
    color = np.array([60, 195, 100])
    return np.clip(rng.normal(color, 5, (size, size, 3)), 0, 255).astype(np.uint8)


class InterruptAt:
    """A training run's progress display that raises Ctrl-C (KeyboardInterrupt) once the run
    has done ``batch`` steps of epoch ``epoch`` (both counted from 0 and 1, as it shows them)."""

    def __init__(self, epoch, batch):
        self.at, self.epoch = (epoch, batch), None

    def start_epoch(self, epoch, epochs, steps):
        self.epoch = epoch

    def step(self, done, loss, acc, images_per_s):
        if (self.epoch, done) == self.at:
            raise KeyboardInterrupt

    def end_epoch(self, summary):
        pass

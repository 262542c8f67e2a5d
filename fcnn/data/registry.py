"""Data sets by name: ``load_dataset("mnist", root)`` -> :class:`Loaded` (train, test, notes)."""

from __future__ import annotations

from pathlib import Path

import attrs

from fcnn.data import cifar10, ham10000, mnist
from fcnn.data.dataset import Dataset
from fcnn.data.download import Progress

__all__ = ["NAMES", "Loaded", "load_dataset"]

NAMES = ("mnist", "cifar10", "ham10000")


@attrs.frozen(eq=False)
class Loaded:
    train: Dataset  # the full training set; validation is split from it
    test: Dataset  # held out: never used for model selection
    notes: tuple[str, ...] = ()  # what the loader skipped, and why


def load_dataset(
    name: str,
    root: Path,
    *,
    image_size: tuple[int, int] | None = None,
    seed: int = 0,
    allow_download: bool = True,
    progress: Progress | None = None,
) -> Loaded:
    """The data set called ``name`` under the data root ``root``.

    ``image_size`` applies to HAM10000 (default 64×64); MNIST and CIFAR-10 come at their
    native size. ``seed`` fixes HAM10000's lesion-grouped test split.
    """
    if name == "mnist":
        return Loaded(*mnist.load(root, allow_download=allow_download, progress=progress))
    if name == "cifar10":
        return Loaded(*cifar10.load(root, allow_download=allow_download, progress=progress))
    if name == "ham10000":
        train, test, skipped = ham10000.load_splits(
            root, image_size=image_size or (64, 64), seed=seed
        )
        return Loaded(train, test, skipped)
    raise ValueError(f"unknown dataset {name!r}; choose one of {list(NAMES)}")

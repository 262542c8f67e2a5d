"""Data sets by name: ``load_dataset("mnist", root)`` -> ``(train, test)``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fcnn.data import cifar10, mnist
from fcnn.data.dataset import Dataset
from fcnn.data.download import Progress

__all__ = ["NAMES", "load_dataset"]

_LOADERS: dict[str, Callable[..., tuple[Dataset, Dataset]]] = {
    "mnist": mnist.load,
    "cifar10": cifar10.load,
}
NAMES = tuple(_LOADERS)


def load_dataset(
    name: str, root: Path, *, allow_download: bool = True, progress: Progress | None = None
) -> tuple[Dataset, Dataset]:
    """``(train, test)`` of the data set called ``name`` under the data root ``root``."""
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {list(NAMES)}") from None
    return loader(root, allow_download=allow_download, progress=progress)

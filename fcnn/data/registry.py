"""Data sets by name: ``load_dataset(name, Request(root=...))`` -> :class:`Loaded`.

A loader is a function of one :class:`Request` (plain values: paths, sizes, a seed; never a
config) that returns the training set (validation is split from it later), the held-out
test set and notes on what it skipped. The built-in data sets are registered below through
the same :func:`register` a plugin uses::

    @fcnn.data.register("my_scans")
    def load_my_scans(request: fcnn.data.Request) -> fcnn.data.Loaded: ...

and a config then says ``dataset: my_scans`` (``fcnn --plugin MODULE`` imports the module).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs

from fcnn.data import arrays, cifar10, ham10000, imagefolder, mnist
from fcnn.data.dataset import Dataset
from fcnn.data.download import Progress
from fcnn.data.errors import DataError
from fcnn.names import claim

__all__ = ["Loaded", "Request", "load_dataset", "names", "register"]


@attrs.frozen
class Request:
    """What a loader needs to know, read once from a config (or given by a script)."""

    root: Path  # the data root (--data-dir, FCNN_DATA): the built-in sets live under it
    path: Path | None = None  # the set's own location: data.root (a folder) or data.path (a file)
    image_size: tuple[int, int] | None = None  # (H, W) to resize to; None: the loader's default
    channels: int | None = None  # 1 (grey) or 3 (RGB); None: the loader's default
    seed: int = 0  # of a test split the loader makes
    test_fraction: float | None = None  # of a test split the loader makes; None: its default
    allow_download: bool = True
    progress: Progress | None = attrs.field(default=None, eq=False)


@attrs.frozen(eq=False)
class Loaded:
    """What a loader returns: the training set, the held-out test set, and notes."""

    train: Dataset  # the full training set; validation is split from it
    test: Dataset  # held out: never used for model selection
    notes: tuple[str, ...] = ()  # what the loader skipped, and why


Loader = Callable[[Request], Loaded]
_LOADERS: dict[str, Loader] = {}


def register(name: str) -> Callable[[Loader], Loader]:
    """Decorator: ``loader(request) -> Loaded`` reads the data set ``name``. A name is taken
    once (the same function again, a module imported twice, is harmless)."""

    def decorate(loader: Loader) -> Loader:
        claim(_LOADERS, name, loader, "a data set", "my_scans")
        return loader

    return decorate


def names() -> list[str]:
    """The registered data set names, built-in and plugins', sorted."""
    return sorted(_LOADERS)


def load_dataset(name: str, request: Request) -> Loaded:
    """The data set called ``name``, as ``request`` asks; DataError for an unknown name."""
    loader = _LOADERS.get(name)
    if loader is None:
        raise DataError(f"unknown dataset {name!r}; choose one of {names()}")
    return loader(request)


@register("mnist")
def _mnist(request: Request) -> Loaded:
    """MNIST under ``<root>/mnist`` (downloaded when absent), at its native 28×28."""
    train, test = mnist.load(
        request.root, allow_download=request.allow_download, progress=request.progress
    )
    return Loaded(train, test)


@register("cifar10")
def _cifar10(request: Request) -> Loaded:
    """CIFAR-10 under ``<root>/cifar10`` (downloaded when absent), at its native 32×32."""
    train, test = cifar10.load(
        request.root, allow_download=request.allow_download, progress=request.progress
    )
    return Loaded(train, test)


@register("ham10000")
def _ham10000(request: Request) -> Loaded:
    """HAM10000 under ``<root>/ham10000`` (default 64×64), with a seeded lesion-grouped test
    split (default 15 %)."""
    train, test, skipped = ham10000.load_splits(
        request.root,
        image_size=request.image_size or (64, 64),
        test_fraction=request.test_fraction or 0.15,
        seed=request.seed,
    )
    return Loaded(train, test, skipped)


# the key that names a user's data set's own location, and what it holds
_OWN = {
    "imagefolder": (
        "root",
        "the folder holding train/<class>/*.jpg (and optionally test/<class>/*.jpg), or "
        "<class>/*.jpg directly",
    ),
    "arrays": (
        "path",
        "an .npz file holding x_train, y_train and optionally x_test, y_test, class_names",
    ),
}


def _own_path(request: Request, dataset: str) -> Path:
    """The data set's own location (``data.root`` or ``data.path``); DataError without it."""
    if request.path is None:
        key, holds = _OWN[dataset]
        raise DataError(f"dataset {dataset} needs data.{key}: {holds}")
    return request.path


@register("imagefolder")
def _imagefolder(request: Request) -> Loaded:
    """A folder of the user's images (:func:`fcnn.data.imagefolder.load_splits`)."""
    root = _own_path(request, "imagefolder")
    mode = "L" if request.channels == 1 else "RGB"
    fraction, size = request.test_fraction or 0.2, request.image_size
    split = imagefolder.load_splits(
        root, size=size, mode=mode, test_fraction=fraction, seed=request.seed
    )
    return Loaded(*split)


@register("arrays")
def _arrays(request: Request) -> Loaded:
    """Arrays in an ``.npz`` file (:func:`fcnn.data.arrays.load_splits`)."""
    path = _own_path(request, "arrays")
    fraction, size = request.test_fraction or 0.2, request.image_size
    return Loaded(
        *arrays.load_splits(path, image_size=size, test_fraction=fraction, seed=request.seed)
    )

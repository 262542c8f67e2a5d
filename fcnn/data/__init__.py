"""Data sets, their locations, downloads, batching and augmentation.

``fcnn.data.register`` adds a data set a config can name (``dataset: NAME``); a loader takes
a :class:`Request` and returns :class:`Loaded` (see :mod:`fcnn.data.registry`).
"""

import importlib

from fcnn.data.dataset import Dataset, split_off_test, train_val_split
from fcnn.data.errors import DataError
from fcnn.data.paths import cache_dir, data_root

__all__ = [
    "DataError",
    "Dataset",
    "Loaded",
    "Request",
    "cache_dir",
    "data_root",
    "load_dataset",
    "names",
    "register",
    "split_off_test",
    "train_val_split",
]

# the registry imports every built-in loader; a process that only decodes images
# (fcnn.data.preprocess, the site's decoders) never pays for it
_REGISTRY = ("Loaded", "Request", "load_dataset", "names", "register")


def __getattr__(name: str):
    if name in _REGISTRY:
        return getattr(importlib.import_module("fcnn.data.registry"), name)
    raise AttributeError(f"module 'fcnn.data' has no attribute {name!r}")

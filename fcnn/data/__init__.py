"""Data sets, their locations, downloads, batching and augmentation.

``fcnn.data.register`` adds a data set a config can name (``dataset: NAME``); a loader takes
a :class:`Request` and returns :class:`Loaded` (see :mod:`fcnn.data.registry`).
"""

from fcnn.data.dataset import Dataset, split_off_test, train_val_split
from fcnn.data.errors import DataError
from fcnn.data.paths import cache_dir, data_root
from fcnn.data.registry import Loaded, Request, load_dataset, names, register

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

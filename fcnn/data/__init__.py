"""Data sets, their locations, downloads, batching and augmentation."""

from fcnn.data.dataset import Dataset, train_val_split
from fcnn.data.errors import DataError
from fcnn.data.paths import cache_dir, data_root

__all__ = ["DataError", "Dataset", "cache_dir", "data_root", "train_val_split"]

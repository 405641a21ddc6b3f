"""Data sets: synthetic 2-D sets, real tabular sets (read from a data directory) and images.

``load(name, n=..., seed=..., data_dir=..., balance=...)``, ``list_datasets()`` and
``train_test(data)`` cover all of them; see :mod:`cfx.data.registry`.
"""

from cfx import _deprecated
from cfx.data.dataset import Dataset, FeatureSchema, Standardizer
from cfx.data.encoder import COLUMN_KINDS, Column, TabularEncoder
from cfx.stats import median_absolute_deviation
from cfx.data.registry import REGISTRY, DatasetInfo, info, list_datasets, load, train_test
from cfx.data.tabular import ENV_VAR, data_dirs, default_data_dir, from_frame
from cfx.data.vision import mnist_from_idx, read_idx

__all__ = [
    "Dataset",
    "FeatureSchema",
    "Standardizer",
    "TabularEncoder",
    "Column",
    "COLUMN_KINDS",
    "from_frame",
    "REGISTRY",
    "DatasetInfo",
    "info",
    "list_datasets",
    "load",
    "train_test",
    "ENV_VAR",
    "data_dirs",
    "default_data_dir",
    "mnist_from_idx",
    "read_idx",
    "median_absolute_deviation",
]

# renamed in cfx 0.2 ("kinds" are experiment kinds; these are kinds of column)
__getattr__ = _deprecated.module_aliases("cfx.data", {"KINDS": ("cfx.data.encoder", "COLUMN_KINDS")})

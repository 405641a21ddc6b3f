"""One entry point for every data set: :func:`load`, :func:`list_datasets`, :func:`train_test`.

Example::

    data = cfx.data.load("german")                 # raw units, one-hot groups in the schema
    train, test = cfx.data.train_test(data)        # standardised with train-only statistics
    clf = cfx.models.fit(train, model="mlp")
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import warnings
from typing import Callable

import numpy as np

from cfx.data import synthetic, tabular, vision
from cfx.data.dataset import Dataset
from cfx.registry import Registry


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Registry entry.

    ``kind`` is "synthetic", "tabular" or "vision"; ``standardize`` says whether
    :func:`train_test` standardises it by default (real tabular data and cats_dogs: yes;
    unit-scale geometric sets and images: no, see their module docstrings).
    """

    name: str
    kind: str
    description: str
    standardize: bool


_ALIASES = {
    "give_me_some_credit": "gmsc",
    "credit_default": "credit",
    "taiwan": "credit",
    "california_housing": "california",
    "german_credit": "german",
    "blobs": "linearly_separable",
    "cats_and_dogs": "cats_dogs",
}


def _registry() -> dict[str, DatasetInfo]:
    reg = {}
    for name, (_, desc) in synthetic.MAKERS.items():
        reg[name] = DatasetInfo(name, "synthetic", desc, standardize=(name == "cats_dogs"))
    for name, spec in tabular.SPECS.items():
        reg[name] = DatasetInfo(name, "tabular", spec.description, standardize=True)
    reg["digits"] = DatasetInfo(
        "digits",
        "vision",
        "scikit-learn 8x8 digits: 1,797 images, 64 pixels in [-1, 1], classes 0..9 (vision, always available)",
        False,
    )
    reg["mnist"] = DatasetInfo(
        "mnist",
        "vision",
        "MNIST test split from IDX files: 10,000 images, 784 pixels in [-1, 1], classes 0..9 (vision)",
        False,
    )
    return reg


#: name -> :class:`DatasetInfo` (a :class:`cfx.registry.Registry`; :func:`load` also normalises - and spaces)
REGISTRY: Registry[DatasetInfo] = Registry("data set", _registry(), aliases=_ALIASES)


def list_datasets() -> dict[str, str]:
    """``{name: one-line description}`` for every data set :func:`load` knows."""
    return {name: info.description for name, info in REGISTRY.items()}


def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str naming a data set; got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key not in REGISTRY:
        close = difflib.get_close_matches(key, list(REGISTRY) + list(_ALIASES), n=1)
        hint = f" Did you mean {_ALIASES.get(close[0], close[0])!r}?" if close else ""
        raise ValueError(f"name: unknown data set {name!r}.{hint} Known data sets: {', '.join(REGISTRY)}")
    return key


def info(name: str) -> DatasetInfo:
    """The registry entry for ``name`` (aliases accepted)."""
    return REGISTRY[_canonical(name)]


def _check_n(n) -> None:
    if n is None:
        return
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int or None; got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be positive; got {n}")


def _select(data: Dataset, n: int | None, seed: int, balance: bool) -> Dataset:
    """Seeded subsample of ``n`` rows (class-balanced with ``balance=True``)."""
    if balance:
        out = data.balance(n, seed)
        if n is not None and len(out) < n:
            warnings.warn(
                f"balance=True: {data.name} has only {len(out) // max(1, len(np.unique(data.y)))} rows in its "
                f"smallest class, so the balanced sample has {len(out)} rows, not n={n}",
                stacklevel=3,
            )
        return out
    if n is None:
        return data
    if n > len(data):
        raise ValueError(f"n={n} exceeds the {len(data)} rows of {data.name}")
    idx = np.random.default_rng(seed).choice(len(data), n, replace=False)
    return data.subset(idx)


def load(
    name: str,
    *,
    n: int | None = None,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    balance: bool = False,
    **options,
) -> Dataset:
    """Load data set ``name`` (see :func:`list_datasets`) in its raw units.

    Args:
      name: registry name (case-insensitive; a few aliases such as "give_me_some_credit").
      n: synthetic sets: rows to generate (default 1000); real/image sets: seeded random
        subsample of n rows (default: all rows). With ``balance=True``: n in total, equal per class.
      seed: generator seed for synthetic data and the subsampling seed otherwise.
      data_dir: directory holding the real data files (default: ``$CFX_DATA_DIR``, then
        ``<repo>/../shared/data``; see :mod:`cfx.data.tabular`).
      balance: class-balanced rows (as many per class as the smallest class, or n / k).
      **options: generator parameters of synthetic sets, e.g. ``noise=0.2`` or ``factor=0.5``.

    Raises ValueError for an unknown name (listing the known ones) and FileNotFoundError
    (naming the file, the directories searched and the source) if a real data file is missing.
    """
    key = _canonical(name)
    _check_n(n)
    kind = REGISTRY[key].kind
    if options and kind != "synthetic":
        raise TypeError(f"load({key!r}) got unexpected options {sorted(options)} (only synthetic sets take options)")
    if kind == "synthetic":
        fn: Callable[..., Dataset] = synthetic.MAKERS[key][0]
        data = fn(synthetic.DEFAULT_N if n is None else n, seed, **options)
        return data.balance(n, seed) if balance else data
    if kind == "tabular":
        data = tabular.load_full(key, data_dir)
    elif key == "digits":
        data = vision.digits()
    else:
        data = vision.mnist(data_dir)
    return _select(data, n, seed, balance)


def train_test(
    data: Dataset, test_size: float = 0.2, seed: int = 0, standardize: bool = True
) -> tuple[Dataset, Dataset]:
    """Stratified train/test split; standardise with statistics of the training split only.

    With ``standardize=True`` the data set's own policy applies: real tabular sets, cats_dogs
    and any data set not in the registry are standardised (z = (x - mean_train) / sd_train
    on non-categorical columns; schema bounds mapped along); the unit-scale geometric
    synthetic sets and images stay in raw coordinates. ``standardize=False`` never
    standardises. Data that already carries a standardizer is not standardised twice.
    """
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a cfx.data.Dataset; got {type(data).__name__}")
    train, test = data.split(test_size=test_size, seed=seed)
    entry = REGISTRY.get(data.name, None)  # a data set of one's own (from_frame, ...): standardised
    policy = entry.standardize if entry is not None else True
    if standardize and policy and data.standardizer is None:
        train = train.standardize()
        test = test.standardize(train.standardizer)
    return train, test

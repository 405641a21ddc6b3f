"""The run helpers experiment kinds share: seeds, splits, factual targets, record paths and
train-or-restore.

Seeds: every random choice gets its own seed derived from ``(config seed, run, labels)`` with
``numpy.random.SeedSequence`` (:func:`derive_seed`), so a record's numbers depend only on its own
identity: adding a generator to a config does not change the other records.
"""

from __future__ import annotations

import inspect
import zlib
from typing import Any, Callable

import numpy as np

from cfx.experiments.progress import Progress
from cfx.experiments.store import Store, run_name

__all__ = ["derive_seed", "key", "load_split", "cell_path", "model_path", "factual_targets", "train_or_restore"]


def derive_seed(seed: int, run: int | None, *labels) -> int:
    """A 31-bit seed from ``(seed, run, labels)``, stable across processes and Python versions
    (``run=None``: no run component, for records seeded by their labels alone)."""
    entropy = [int(seed)] + ([] if run is None else [int(run)]) + [zlib.crc32(str(lab).encode()) for lab in labels]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] & 0x7FFFFFFF)


def key(seed: int, run: int | None, *labels):
    """A PRNG key of :func:`derive_seed`."""
    import jax

    return jax.random.key(derive_seed(seed, run, *labels))


def load_split(dc, seed: int, transform: Callable[[Any], Any] | None = None):
    """(train, test) of data-set section ``dc`` (:class:`cfx.experiments.sections.DataSpec`):
    loaded with ``seed`` (``transform`` applied to the whole set, e.g. flipped labels), split
    stratified with the same seed, standardised as ``dc.standardize`` says."""
    import cfx.data

    data = cfx.data.load(dc.name, n=dc.n, seed=seed, data_dir=dc.data_dir, balance=dc.balance, **dict(dc.options))
    if transform is not None:
        data = transform(data)
    return cfx.data.train_test(data, test_size=dc.test_size, seed=seed, standardize=dc.standardize)


def cell_path(*labels: str, run: int) -> tuple[str, ...]:
    """The record of one cell: ``cells/<labels...>/run<r>``."""
    return ("cells", *labels, run_name(run))


def model_path(data: str, model: str, run: int) -> tuple[str, ...]:
    """The record of one trained model: ``models/<data>/<model>/run<r>``."""
    return ("models", data, model, run_name(run))


def spec_arguments(spec, fn: Callable, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of config section ``spec`` that name a parameter of ``fn`` (a function or a
    dataclass), by name, ``exclude`` aside: ``fn(**spec_arguments(spec, fn), other=...)`` passes a
    section's settings through without repeating each name."""
    params = inspect.signature(fn).parameters
    return {k: getattr(spec, k) for k in type(spec).model_fields if k in params and k not in exclude}


def cell_record(dc, mc, gc, run: int, **fields) -> dict[str, Any]:
    """The record of one grid cell: its labels (data set, model and generator keys, the run, the
    generator's registry name), then ``fields``."""
    return {"dataset": dc.key, "model": mc.key, "generator": gc.key, "run": run, "registry_name": gc.name, **fields}


def cell_arrays(res, **extra) -> dict[str, Any]:
    """The arrays a cell record keeps of a search result ``res`` (factuals, target,
    counterfactuals, converged, steps, target probabilities), then ``extra`` (the kind's own)."""
    keep = ("factuals", "target", "counterfactuals", "converged", "steps", "target_probs")
    return {name: getattr(res, name) for name in keep} | extra


def factual_targets(pred: np.ndarray, n_classes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(candidate rows, target per row) of the documented rule: binary, the rows predicted 0
    with target 1; multiclass, every row with t = (ŷ + 1 + u) mod C, u ~ U{0, ..., C − 2}."""
    if n_classes == 2:
        return np.flatnonzero(pred == 0), np.ones(len(pred), np.int32)
    targets = ((pred + 1 + rng.integers(0, n_classes - 1, size=len(pred))) % n_classes).astype(np.int32)
    return np.arange(len(pred)), targets


def train_or_restore(
    store: Store,
    path: tuple[str, ...],
    *,
    restore: Callable[[bytes, dict], Any],
    train: Callable[[], tuple[Any, dict, dict | None]],
    progress: Progress,
    label: str,
) -> tuple[Any, dict, dict | None]:
    """``(classifier, info, arrays)`` of a model record: rebuilt from its saved parameters by
    ``restore(blob, info)`` (None when they do not fit), else ``train()`` -> (classifier, info,
    arrays) and saved with the flax parameters as the blob.

    A saved model ``restore`` cannot rebuild is trained again and given exactly the saved
    parameters (not saved again). The arrays are those saved with the record (None if none).
    """
    import flax.serialization

    blob = store.load_blob(path)  # only of a finished record
    info = None
    if blob is not None:
        info = store.load(path)
        clf = restore(blob, info)
        if clf is not None:
            return clf, info, store.load_arrays(path)
    progress.status(f"{label}: training")
    clf, fresh, arrays = train()
    if blob is not None:  # saved but not rebuildable without training: use exactly the saved parameters
        return clf.replace(flax.serialization.from_bytes(clf.params, blob)), info, None
    store.save(path, fresh, arrays=arrays, blob=flax.serialization.to_bytes(clf.params))
    return clf, fresh, arrays

"""Save and load a classifier, a data set and a generator as data, never as pickled code.

    cfx.save("bundle", classifier=clf, dataset=train, generator=gen)
    saved = cfx.load("bundle")          # {"classifier": ..., "dataset": ..., "generator": ...}

The folder holds ``manifest.json`` (the format version, every object's specification: the
model's module class and fields, the data set's schema and fitted encoder, the generator's
class and scalar fields) and the arrays beside it (``classifier.msgpack``: flax msgpack of the
parameters; ``dataset.npz``; ``generator.npz``). Loading rebuilds each object from its
specification, so predictions and counterfactuals are bit-identical to the saved objects'.

What can be saved: classifiers built by :func:`cfx.models.fit` (a flax module of
``cfx.models`` — MLP, linear, JEM — alone or in an :class:`cfx.models.Ensemble`) or by
:func:`cfx.models.from_sklearn` (its static fields and arrays; not a ``from_predict_proba``
black box, which is host code); any
:class:`cfx.data.Dataset`; a registered generator whose fields are numbers, strings, arrays
or None (a fitted REVISE/CLUE holds a VAE object: save it unfitted and fit after loading).
Anything else is refused with the field that cannot be written.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from cfx import generators as G
from cfx import models
from cfx.classifier import Classifier
from cfx.data import dataset as dataset_module
from cfx.data import encoder as encoder_module
from cfx.data.dataset import Dataset

FORMAT = 1
MANIFEST = "manifest.json"
_MODULE_FIELDS_SKIPPED = ("parent", "name")


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _plain(value: Any, what: str) -> Any:
    """A JSON value for a field (tuples as lists, numpy scalars as Python ones)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_plain(v, what) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "__class__": type(value).__name__,
            **{f.name: _plain(getattr(value, f.name), f"{what}.{f.name}") for f in dataclasses.fields(value) if f.init},
        }
    if isinstance(value, (np.ndarray, jax.Array)):
        return {"__array__": np.asarray(value).tolist(), "dtype": str(np.asarray(value).dtype)}
    raise TypeError(f"cfx.save: {what} is a {type(value).__name__}, which cannot be written as data")


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _rebuild(spec: Any, namespace: dict[str, type]) -> Any:
    """Inverse of :func:`_plain` for the dataclasses of ``namespace``."""
    if isinstance(spec, dict) and "__array__" in spec:
        return np.asarray(spec["__array__"], dtype=spec["dtype"])
    if isinstance(spec, dict) and "__class__" in spec:
        cls = namespace.get(spec["__class__"])
        if cls is None:
            raise ValueError(f"cfx.load: unknown class {spec['__class__']!r} in the manifest")
        return cls(**{k: _rebuild(v, namespace) for k, v in spec.items() if k != "__class__"})
    if isinstance(spec, list):
        return _tuples([_rebuild(v, namespace) for v in spec])
    return spec


# ------------------------------------------------------------------------------ classifier
_TRANSLATIONS = {cls.__name__: cls for cls in (models.external.SklearnApply, models.trees.TreeEnsembleApply)}


def _module_spec(module) -> dict:
    cls = type(module)
    if getattr(models, cls.__name__, None) is not cls:
        raise TypeError(
            f"cfx.save: classifier's module {cls.__name__} is not a cfx.models module; cfx.save takes "
            "models built by cfx.models.fit (save other models' parameters with flax.serialization)"
        )
    fields = {
        f.name: _plain(getattr(module, f.name), f"module.{f.name}")
        for f in dataclasses.fields(module)
        if f.init and f.name not in _MODULE_FIELDS_SKIPPED
    }
    return {"module": cls.__name__, "fields": fields}


def _classifier_spec(clf: Classifier) -> dict:
    if not isinstance(clf, Classifier):
        raise TypeError(f"cfx.save: classifier must be a cfx.Classifier; got {type(clf).__name__}")
    fn = clf.apply_fn
    common = {"n_features": clf.n_features, "n_classes": clf.n_classes}
    if isinstance(fn, models.Ensemble):
        extra = {
            f.name: _plain(getattr(fn, f.name), f"Ensemble.{f.name}")
            for f in dataclasses.fields(fn)
            if f.init and f.name != "module"
        }
        return {"apply": "Ensemble", **_module_spec(fn.module), "ensemble": extra, **common}
    if isinstance(fn, models.ModuleApply):
        return {"apply": "ModuleApply", **_module_spec(fn.module), **common}
    if isinstance(fn, tuple(_TRANSLATIONS.values())):  # cfx.models.from_sklearn: static fields + arrays
        return {"apply": "translation", "fields": _plain(fn, "apply_fn"), **common}
    raise TypeError(
        f"cfx.save: the classifier's apply_fn is a {type(fn).__name__}; cfx.save takes models built by "
        "cfx.models.fit (a flax module of cfx.models, alone or in an Ensemble) or "
        "cfx.models.from_sklearn (a black box from from_predict_proba is host code: not saved)"
    )


def _load_classifier(spec: dict, blob: bytes) -> Classifier:
    if spec["apply"] == "translation":
        params = jax.tree_util.tree_map(jnp.asarray, flax.serialization.msgpack_restore(blob))
        return Classifier(
            _rebuild(spec["fields"], _TRANSLATIONS), params, n_features=spec["n_features"], n_classes=spec["n_classes"]
        )
    module = getattr(models, spec["module"])(**{k: _tuples(v) for k, v in spec["fields"].items()})
    fn = models.Ensemble(module, **spec["ensemble"]) if spec["apply"] == "Ensemble" else models.ModuleApply(module)
    params = jax.tree_util.tree_map(jnp.asarray, flax.serialization.msgpack_restore(blob))
    return Classifier(fn, params, n_features=spec["n_features"], n_classes=spec["n_classes"])


# ------------------------------------------------------------------------------ dataset, generator
_DATA_CLASSES = {
    cls.__name__: cls
    for module in (dataset_module, encoder_module)
    for cls in vars(module).values()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls)
}


def _dataset_spec(data: Dataset) -> tuple[dict, dict]:
    if not isinstance(data, Dataset):
        raise TypeError(f"cfx.save: dataset must be a cfx.data.Dataset; got {type(data).__name__}")
    meta = {f: _plain(getattr(data, f), f"dataset.{f}") for f in ("name", "schema", "standardizer", "encoder")}
    return meta, {"X": np.asarray(data.X), "y": np.asarray(data.y), "ids": np.asarray(data.ids)}


def _generator_spec(gen) -> tuple[dict, dict]:
    cls = type(gen)
    if not isinstance(gen, G.Generator) or getattr(G, cls.__name__, None) is not cls:
        raise TypeError(f"cfx.save: generator must be one of cfx.generators' classes; got {cls.__name__}")
    fields, arrays = {}, {}
    for f in dataclasses.fields(gen):
        value = getattr(gen, f.name)
        if isinstance(value, (np.ndarray, jax.Array)) and not jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
            arrays[f.name] = np.asarray(value)
        else:
            try:
                fields[f.name] = _plain(value, f"{cls.__name__}.{f.name}")
            except TypeError:
                raise TypeError(
                    f"cfx.save: {cls.__name__}.{f.name} is a {type(value).__name__}, which cannot be "
                    "written as data; save the generator without it (e.g. unfitted) and fit it after "
                    "loading"
                ) from None
    return {"class": cls.__name__, "fields": fields}, arrays


def _npz(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


# ------------------------------------------------------------------------------ public
def save(
    path: str | os.PathLike, *, classifier: Classifier | None = None, dataset: Dataset | None = None, generator=None
) -> Path:
    """Write the given objects to the folder ``path`` (created; existing files replaced atomically).

    Every object is checked before anything is written, so a refused object leaves no partial
    bundle. Returns the folder.
    """
    if classifier is None and dataset is None and generator is None:
        raise ValueError("cfx.save needs at least one of classifier=, dataset=, generator=")
    manifest: dict[str, Any] = {"format": FORMAT}
    files: dict[str, bytes] = {}
    if classifier is not None:
        manifest["classifier"] = _classifier_spec(classifier)
        files["classifier.msgpack"] = flax.serialization.msgpack_serialize(jax.device_get(classifier.params))
    if dataset is not None:
        manifest["dataset"], arrays = _dataset_spec(dataset)
        files["dataset.npz"] = _npz(arrays)
    if generator is not None:
        manifest["generator"], arrays = _generator_spec(generator)
        files["generator.npz"] = _npz(arrays)
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise ValueError(f"cfx.save: path {root} exists and is not a folder")
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        _atomic_write(root / name, data)
    _atomic_write(root / MANIFEST, json.dumps(manifest, indent=1).encode())  # last: the bundle is complete
    return root


def load(path: str | os.PathLike) -> dict[str, Any]:
    """The objects :func:`save` wrote to ``path``: a dict with keys among ``classifier``,
    ``dataset``, ``generator``."""
    root = Path(path)
    if not (root / MANIFEST).is_file():
        raise FileNotFoundError(f"cfx.load: {root} holds no {MANIFEST} (not a folder written by cfx.save)")
    manifest = json.loads((root / MANIFEST).read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"cfx.load: {root} has save format {manifest.get('format')!r}; this cfx reads {FORMAT}")
    out: dict[str, Any] = {}
    if "classifier" in manifest:
        out["classifier"] = _load_classifier(manifest["classifier"], (root / "classifier.msgpack").read_bytes())
    if "dataset" in manifest:
        meta = {k: _rebuild(v, _DATA_CLASSES) for k, v in manifest["dataset"].items()}
        with np.load(root / "dataset.npz", allow_pickle=False) as arrays:
            out["dataset"] = Dataset(arrays["X"], arrays["y"], ids=arrays["ids"], **meta)
    if "generator" in manifest:
        spec = manifest["generator"]
        with np.load(root / "generator.npz", allow_pickle=False) as arrays:
            leaves = {k: jnp.asarray(arrays[k]) for k in arrays.files}
        fields = {k: _tuples(v) for k, v in spec["fields"].items()}
        cls = getattr(G, spec["class"])
        init = {f.name for f in dataclasses.fields(cls) if f.init}
        out["generator"] = cls(**{k: v for k, v in {**fields, **leaves}.items() if k in init})
    return out

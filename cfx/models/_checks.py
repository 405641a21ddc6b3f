"""fit's input checks and model building: the data set, the model and its options, warm-start params, the loss.

Re-exported by :mod:`cfx.models.train` (import them from there).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cfx._validate import float_dtype, integer
from cfx.classifier import Classifier
from cfx.models.ensemble import Ensemble
from cfx.models.mlp import ModuleApply
from cfx.models.registry import MODELS
from cfx.models.step import LossFn, TrainState


def _own_fit(model) -> Callable[..., Any] | None:
    """A registered model's own training (``ModelEntry.fit``), else None."""
    return MODELS.get(model).fit if isinstance(model, str) else None


def _model_options(model, options: dict, caller: str) -> dict:
    """``options`` when they are the model's own (``ModelEntry.options``, checked by its ``check``)."""
    own = MODELS.get(model).options if isinstance(model, str) else ()
    unknown = sorted(set(options) - set(own))
    if unknown:
        label = model if isinstance(model, str) else type(model).__name__
        raise TypeError(
            f"{caller}() got unexpected keyword arguments {unknown} for model {label!r}"
            + (f" (its own options: {', '.join(own)})" if own else "")
        )
    if options and MODELS.get(model).check is not None:
        MODELS.get(model).check(**options)
    return options


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}")
    return int(value)


def _resolve_model(model, *, n_classes, widths, activation, dropout, n_members) -> ModuleApply | Ensemble:
    if isinstance(model, Ensemble):
        return model
    if isinstance(model, nn.Module):
        return ModuleApply(model)
    if not isinstance(model, str):
        raise TypeError(
            f"model must be one of {MODELS.names()}, a flax.linen.Module or a cfx.models.Ensemble; "
            f"got {type(model).__name__}"
        )
    entry = MODELS.get(model)
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
        raise TypeError(f"widths must be a sequence of layer widths (ints >= 1); got {widths!r}")
    widths = tuple(integer("widths[]", w, low=1) for w in widths)
    return entry.build(n_classes=n_classes, widths=widths, activation=activation, dropout=dropout, n_members=n_members)


def _check_dataset(dataset) -> tuple[np.ndarray, np.ndarray]:
    if not (hasattr(dataset, "X") and hasattr(dataset, "y")):
        raise TypeError(f"dataset must be a cfx.data.Dataset (with .X and .y); got {type(dataset).__name__}")
    X = np.asarray(dataset.X, float_dtype())
    y = np.asarray(dataset.y)
    if X.ndim != 2 or X.shape[0] < 1:
        raise ValueError(f"dataset.X must have shape (n, d) with n >= 1; got {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"dataset.y must have shape ({X.shape[0]},); got {y.shape}")
    bad = ~np.isfinite(X)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise ValueError(
            f"dataset.X contains {int(bad.sum())} NaN/inf values (in {rows.size} rows, first row {rows[0]}); "
            "impute or drop them before fit"
        )
    if not np.issubdtype(y.dtype, np.integer) and not np.all(y == np.round(y)):
        raise ValueError("dataset.y must hold integer class labels")
    y = y.astype(np.int32)
    if y.min() < 0:
        raise ValueError(f"dataset.y must hold class labels 0..C-1; got min {int(y.min())}")
    return X, y


def _warm_params(init_params, fresh_shapes) -> Any:
    """Check ``init_params`` against the model's parameter structure and shapes."""
    if isinstance(init_params, (Classifier, TrainState)):
        init_params = init_params.params
    ref_def = jax.tree_util.tree_structure(fresh_shapes)
    got_def = jax.tree_util.tree_structure(init_params)
    if ref_def != got_def:
        raise ValueError(
            "init_params does not match the model's parameter structure "
            f"(expected {ref_def}, got {got_def}); pass the params of a model with the same "
            "architecture (and n_classes / n_members)"
        )
    leaves = []
    for ref, leaf in zip(jax.tree_util.tree_leaves(fresh_shapes), jax.tree_util.tree_leaves(init_params)):
        leaf = jnp.asarray(leaf, ref.dtype)
        if leaf.shape != ref.shape:
            raise ValueError(f"init_params has a leaf of shape {leaf.shape} where the model expects {ref.shape}")
        leaves.append(leaf)
    return jax.tree_util.tree_unflatten(ref_def, leaves)


def _check_loss(loss: Any) -> LossFn:
    if not callable(loss):
        raise TypeError(
            "loss must be a function (params, batch, key, *, apply, extra) -> (loss, (new_extra, aux_metrics)); "
            f"got {type(loss).__name__}"
        )
    try:
        hash(loss)
    except TypeError:
        raise TypeError(
            f"loss must be hashable (a function or a frozen dataclass) so the compiled epoch can be cached; "
            f"got an unhashable {type(loss).__name__}"
        ) from None
    return loss


def _check_extra(extra: Any, apply: ModuleApply | Ensemble) -> Any:
    """``extra`` as arrays; for ensembles every leaf needs the leading member axis M."""
    # Strong dtypes: a Python 0 and jnp.int32(0) then share one compiled epoch.
    extra = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.asarray(a).dtype), extra)
    if isinstance(apply, Ensemble):
        m = apply.n_members
        for leaf in jax.tree_util.tree_leaves(extra):
            if leaf.ndim == 0 or leaf.shape[0] != m:
                raise ValueError(
                    f"for an ensemble of {m} members every leaf of extra needs a leading member axis of "
                    f"size {m} (each member has its own); got a leaf of shape {leaf.shape}"
                )
    return extra


def _build(model, d: int, *, n_classes: int, widths, activation, dropout, n_members):
    """The model's apply object, its parameter shapes (from ``eval_shape``, nothing is
    initialised) and its number of output classes; checks that it maps (n, d) to (n, C)."""
    apply = _resolve_model(
        model, n_classes=n_classes, widths=widths, activation=activation, dropout=dropout, n_members=n_members
    )
    fresh_shapes = jax.eval_shape(functools.partial(apply.init, n_features=d), jax.random.key(0))
    if any(c != "params" for c in fresh_shapes):
        raise ValueError(
            f"fit trains stateless modules only (variables {sorted(fresh_shapes)}); modules with "
            "batch statistics or other mutable collections must be trained by hand and wrapped in a Classifier"
        )
    member = apply.member if isinstance(apply, Ensemble) else apply
    member_shapes = fresh_shapes
    if isinstance(apply, Ensemble):  # drop the stacked member axis
        member_shapes = jax.tree_util.tree_map(lambda s: jax.ShapeDtypeStruct(s.shape[1:], s.dtype), fresh_shapes)
    out = jax.eval_shape(member, member_shapes, jax.ShapeDtypeStruct((1, d), float_dtype()))
    if out.ndim != 2 or not (out.shape[-1] >= n_classes or (out.shape[-1] == 1 and n_classes == 2)):
        raise ValueError(f"model must output (n, C) logits with C >= {n_classes}; got shape {out.shape} for (1, {d})")
    return apply, fresh_shapes, max(n_classes, int(out.shape[-1]))

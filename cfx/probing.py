"""Linear probes of a model's hidden layers, with the controls that say what a probe's score means.

A probe is ridge regression from a layer's activations Z (n, h) to a target variable
(Altmeyer et al., "Position: Stop Making Unscientific AGI Performance Claims" — the "Spurious
Sparks of AGI" paper, ICML 2024): finding that a hidden layer linearly "encodes" a variable is weak
evidence unless the same probe fails on

  (a) the raw inputs through a random projection of the same width, Z = X R, R ~ N(0, 1/d);
  (b) the same layer of an untrained model of the same architecture (fresh initialisation);
  (c) the trained layer with the targets shuffled (chance level).

:func:`probe` runs the probe and the controls and puts them side by side. The probe, per fold f
of a K-fold split and ridge penalty α (features standardised on the training folds, intercept
from the centred target):

    W = (Z_trᵀ Z_tr + α I)⁻¹ Z_trᵀ (Y_tr − ȳ_tr),      Ŷ_te = Z_te W + ȳ_tr,

scored by R² = 1 − Σ (y − ŷ)² / Σ (y − ȳ_te)² on the held-out fold (regression; averaged over
target columns) or by accuracy of argmax Ŷ against the class (classification, Y one-hot: a
ridge classifier). All folds and all α are one jitted computation (vmap); α is chosen by the mean
CV score, the same rule for the probe and every control.
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cfx.classifier import Classifier
from cfx.models.mlp import ACTIVATIONS, MLP, ModuleApply

ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
TASKS = ("regression", "classification")


def layers(classifier: Classifier) -> list[str]:
    """The layers a probe can read: ``"input"`` and the model's top-level flax submodules."""
    _module(classifier)
    params = classifier.params.get("params", {})
    return ["input", *params.keys()]


def _module(classifier):
    if not isinstance(classifier, Classifier):
        raise TypeError(f"classifier must be a cfx.Classifier; got {type(classifier).__name__}")
    if not (
        isinstance(classifier.apply_fn, ModuleApply)
        and isinstance(classifier.params, dict)
        and "params" in classifier.params
    ):
        name = getattr(classifier.apply_fn, "__qualname__", type(classifier.apply_fn).__name__)
        raise ValueError(
            "probing reads a layer of a flax module: the classifier's apply_fn must be a "
            f"cfx.models.ModuleApply (cfx.models.fit's 'mlp', 'linear', or your module); got {name}"
        )
    return classifier.apply_fn.module


def activations(classifier: Classifier, X, layer: str) -> np.ndarray:
    """(n, h): the output of the top-level submodule ``layer`` for inputs X (``"input"``: X).

    For cfx's :class:`~cfx.models.MLP` a hidden layer ``hidden_i`` is read after its activation
    function (what the next layer sees); any other module's submodule is read as it returns."""
    module = _module(classifier)
    known = layers(classifier)
    if layer not in known:
        raise ValueError(f"layer {layer!r} does not exist; the model's layers are {known}")
    X = np.asarray(X, np.float32)
    if layer == "input":
        return X
    return np.asarray(_activations(module, layer, classifier.params, X))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _activations(module, layer: str, variables, X):
    captured = []

    def grab(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        mod = context.module
        if context.method_name == "__call__" and mod.scope is not None and tuple(mod.scope.path) == (layer,):
            captured.append(out)
        return out

    with nn.intercept_methods(grab):
        module.apply(variables, X)
    out = captured[0]
    if isinstance(module, MLP) and layer.startswith("hidden_"):
        out = ACTIVATIONS[module.activation](out)
    return out


@functools.partial(jax.jit, static_argnames=("classification",))
def _cv_scores(Z, Y, train_masks, alphas, classification: bool):
    """(A, F) held-out scores for every ridge penalty α (rows) and fold (columns)."""
    h = Z.shape[1]

    def one(mask, alpha):
        w = mask[:, None]
        n_tr = jnp.sum(mask)
        mu = jnp.sum(w * Z, 0) / n_tr
        sd = jnp.sqrt(jnp.sum(w * (Z - mu) ** 2, 0) / n_tr)
        Zs = (Z - mu) / jnp.where(sd > 1e-6, sd, 1.0)
        ym = jnp.sum(w * Y, 0) / n_tr
        W = jnp.linalg.solve(Zs.T @ (w * Zs) + alpha * jnp.eye(h), Zs.T @ (w * (Y - ym)))
        pred = Zs @ W + ym
        test = 1.0 - mask
        n_te = jnp.sum(test)
        if classification:
            return jnp.sum(test * (jnp.argmax(pred, -1) == jnp.argmax(Y, -1))) / n_te
        y_te = jnp.sum(test[:, None] * Y, 0) / n_te
        ss_res = jnp.sum(test[:, None] * (Y - pred) ** 2, 0)
        ss_tot = jnp.sum(test[:, None] * (Y - y_te) ** 2, 0)
        return jnp.mean(1.0 - ss_res / jnp.maximum(ss_tot, 1e-12))

    return jax.vmap(lambda a: jax.vmap(lambda m: one(m, a))(train_masks))(alphas)


def ridge_cv(
    Z, y, *, task: str = "regression", folds: int = 5, alphas: Sequence[float] = ALPHAS, seed: int = 0
) -> dict:
    """Cross-validated ridge probe Z -> y (module docstring): ``{"score", "sd", "alpha", "per_fold"}``
    at the α with the best mean score; sd over the folds."""
    Z = np.asarray(Z, np.float32)
    y = np.asarray(y)
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}; got {task!r}")
    if Z.ndim != 2 or len(Z) != len(y):
        raise ValueError(f"activations (n, h) and targets (n,) must have the same n; got {Z.shape} and {y.shape}")
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or not 2 <= folds <= len(Z):
        raise ValueError(f"folds must be an int in [2, n]; got {folds!r}")
    if task == "classification":
        classes, idx = np.unique(y, return_inverse=True)
        Y = np.eye(len(classes), dtype=np.float32)[idx]
    else:
        Y = np.asarray(y, np.float32).reshape(len(y), -1)
    assign = np.random.default_rng(seed).permutation(len(Z)) % folds
    masks = (assign[None, :] != np.arange(folds)[:, None]).astype(np.float32)
    scores = np.asarray(
        _cv_scores(
            jnp.asarray(Z),
            jnp.asarray(Y),
            jnp.asarray(masks),
            jnp.asarray(alphas, jnp.float32),
            classification=task == "classification",
        )
    )
    best = int(np.argmax(scores.mean(1)))
    return {
        "score": float(scores[best].mean()),
        "sd": float(scores[best].std(ddof=1)),
        "alpha": float(alphas[best]),
        "per_fold": scores[best],
    }


def probe(
    classifier: Classifier,
    X,
    target,
    *,
    layer: str,
    task: str = "regression",
    folds: int = 5,
    alphas: Sequence[float] = ALPHAS,
    seed: int = 0,
    untrained: Classifier | None = None,
):
    """The probe of ``layer`` for ``target`` and its controls, side by side (a pandas DataFrame).

    Rows: ``trained layer`` (the probe), ``random projection`` (control a: X R, R ~ N(0, 1/d), the
    layer's width), ``untrained model`` (control b: the same layer of the architecture freshly
    initialised with ``seed + 1``, or ``untrained`` if given), ``shuffled targets`` (control c),
    and ``raw inputs`` (X itself, for reference). Columns: ``score`` (mean CV R² or accuracy),
    ``sd`` (over folds), ``alpha``, ``width``.

    Example::

        table = cfx.probing.probe(clf, test.X, radius, layer="hidden_1")
        table.loc["trained layer", "score"] - table.loc["untrained model", "score"]
    """
    import pandas as pd

    X = np.asarray(X, np.float32)
    Z = activations(classifier, X, layer)
    if untrained is None:
        fresh = classifier.apply_fn.init(jax.random.key(seed + 1), classifier.n_features)
        untrained = classifier.replace(fresh)
    rng = np.random.default_rng(seed)
    R = rng.normal(0.0, 1.0 / np.sqrt(X.shape[1]), (X.shape[1], Z.shape[1])).astype(np.float32)
    target = np.asarray(target)
    rows = {
        "trained layer": (Z, target),
        "random projection": (X @ R, target),
        "untrained model": (activations(untrained, X, layer), target),
        "shuffled targets": (Z, rng.permutation(target)),
        "raw inputs": (X, target),
    }
    out = {}
    for name, (features, y) in rows.items():
        r = ridge_cv(features, y, task=task, folds=folds, alphas=alphas, seed=seed)
        out[name] = {"score": r["score"], "sd": r["sd"], "alpha": r["alpha"], "width": features.shape[1]}
    table = pd.DataFrame.from_dict(out, orient="index")
    table.attrs.update(layer=layer, task=task, metric="R2" if task == "regression" else "accuracy", folds=folds)
    return table


__all__ = ["ALPHAS", "TASKS", "activations", "layers", "probe", "ridge_cv"]

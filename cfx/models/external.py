"""Models from outside JAX: scikit-learn estimators translated exactly, and any host
``predict_proba`` as a black box.

Two paths, one home (``cfx.models``):

* :func:`from_sklearn` rewrites a fitted estimator's arithmetic in JAX, so every generator
  applies (gradients included) and the search compiles as for a cfx model. Supported:
  ``LogisticRegression``, ``LinearSVC``, ``SGDClassifier`` (linear models), ``MLPClassifier``,
  a ``Pipeline`` of ``StandardScaler`` / ``MinMaxScaler`` steps before one of those, and the
  tree ensembles ``DecisionTreeClassifier``, ``RandomForestClassifier``,
  ``ExtraTreesClassifier`` and binary ``GradientBoostingClassifier`` (exact but piecewise
  constant: gradient-free generators only, e.g. ``FeatureTweak``; see :mod:`cfx.models.trees`).
* :func:`from_predict_proba` calls any host function of a 2-D numpy array through
  ``jax.pure_callback``: a black box for the gradient-free generators (``growing_spheres``,
  ``feature_tweak`` for trees).

Classes are indexed as in the estimator's ``classes_`` (0 .. C-1 in that order).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from cfx.classifier import Classifier
from cfx.models import trees

SUPPORTED = (
    "LogisticRegression",
    "LinearSVC",
    "SGDClassifier",
    "MLPClassifier",
    "Pipeline(StandardScaler | MinMaxScaler, ..., one of these)",
    *trees.SUPPORTED,
)
SCALERS = ("StandardScaler", "MinMaxScaler")
_NAMES = ("LogisticRegression", "LinearSVC", "SGDClassifier", "MLPClassifier")
_MLP_ACTIVATIONS = {"identity": lambda h: h, "logistic": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu}


# ----------------------------------------------------------------------------- exact translations
@dataclasses.dataclass(frozen=True)
class SklearnApply:
    """``apply_fn`` of :func:`from_sklearn` for scalers + a linear model or an MLP (hashable, static).

    ``prep``: the scaler kinds in order, ``x -> x·scale + shift`` each (``clip``: MinMaxScaler's
    clip to its feature range); then ``layers`` dense layers with ``activation`` between them.
    ``out``: ``"logit"`` (the last layer's output are the logits; one column: a binary logit)
    or ``"log_sigmoid"`` (one-vs-rest log-loss SGD: softmax(log σ(f)) = σ(f_c)/Σσ, sklearn's
    normalisation).
    """

    prep: tuple[str, ...] = ()
    activation: str = "identity"
    out: str = "logit"
    name: str = ""

    def __call__(self, params: Any, x: jax.Array) -> jax.Array:
        h = x
        for kind, p in zip(self.prep, params["prep"]):
            h = h * p["scale"] + p["shift"]
            if kind == "clip":
                h = jnp.clip(h, p["low"], p["high"])
        act = _MLP_ACTIVATIONS[self.activation]
        layers = params["layers"]
        for i, (w, b) in enumerate(layers):
            h = h @ w + b
            if i < len(layers) - 1:
                h = act(h)
        return jax.nn.log_sigmoid(h) if self.out == "log_sigmoid" else h


def _f32(a) -> jnp.ndarray:
    return jnp.asarray(np.asarray(a, np.float64), jnp.float32)


def _scaler(step, d: int) -> tuple[str, dict]:
    kind = type(step).__name__
    if kind == "StandardScaler":  # (x - mean) / scale: scale = 1/s, shift = -mean/s
        mean = np.zeros(d) if getattr(step, "mean_", None) is None else np.asarray(step.mean_, np.float64)
        s = np.ones(d) if getattr(step, "scale_", None) is None else np.asarray(step.scale_, np.float64)
        return "affine", {"scale": _f32(1.0 / s), "shift": _f32(-mean / s)}
    low, high = step.feature_range  # MinMaxScaler: x * scale_ + min_
    p = {"scale": _f32(step.scale_), "shift": _f32(step.min_)}
    if getattr(step, "clip", False):
        return "clip", {**p, "low": jnp.float32(low), "high": jnp.float32(high)}
    return "affine", p


def _linear(est) -> tuple[list, str]:
    coef, intercept = np.asarray(est.coef_, np.float64), np.asarray(est.intercept_, np.float64)
    out = "logit"
    if type(est).__name__ == "SGDClassifier" and getattr(est, "loss", "") == "log_loss" and coef.shape[0] > 2:
        out = "log_sigmoid"  # its multi-class predict_proba normalises one-vs-rest sigmoids
    return [[_f32(coef.T), _f32(intercept)]], out  # lists, not tuples: msgpack (cfx.save) writes lists


def _mlp(est) -> tuple[list, str]:
    if est.out_activation_ not in ("logistic", "softmax") or (
        est.out_activation_ == "logistic" and est.n_outputs_ != 1
    ):
        raise ValueError(
            f"from_sklearn: MLPClassifier with output {est.out_activation_!r} and {est.n_outputs_} "
            "outputs (multi-label) is not a single classifier; only binary and multi-class models"
        )
    if est.activation not in _MLP_ACTIVATIONS:
        raise ValueError(
            f"from_sklearn: MLPClassifier activation {est.activation!r} is not one of {sorted(_MLP_ACTIVATIONS)}"
        )
    return [[_f32(w), _f32(b)] for w, b in zip(est.coefs_, est.intercepts_)], "logit"


def from_sklearn(estimator) -> Classifier:
    """An exact JAX translation of a fitted scikit-learn classifier.

    Linear models: logits f = x Wᵀ + b (one column for a binary model: p = σ(f), as
    ``LogisticRegression.predict_proba``; multinomial: softmax(f)). ``LinearSVC`` and
    ``SGDClassifier`` without probabilities: p = softmax of the decision scores (binary σ(f)),
    so τ = 0.5 is the estimator's own decision boundary. ``MLPClassifier``: its hidden
    activation (identity, logistic, tanh, relu), a binary logistic output or a softmax. A
    ``Pipeline`` of ``StandardScaler`` / ``MinMaxScaler`` steps is folded in, so the
    classifier takes the pipeline's raw input. Tree ensembles: see :mod:`cfx.models.trees`
    (exact, not differentiable). Computed in float32 (scikit-learn: float64), so predictions
    agree except on points within float32 rounding of the boundary.

    Any other estimator raises a ``TypeError`` naming the supported ones; use
    :func:`from_predict_proba` (a black box) for those.

    Example::

        clf = cfx.models.from_sklearn(LogisticRegression().fit(X, y))
        cfx.generate(cfx.generators.Generic(), clf, X[:10], target=1, key=jax.random.key(0))
    """
    steps = [estimator]
    if type(estimator).__name__ == "Pipeline":
        steps = [s for _, s in estimator.steps if s is not None and not (isinstance(s, str) and s == "passthrough")]
        if not steps:
            raise TypeError("from_sklearn: the Pipeline has no steps")
        bad = [type(s).__name__ for s in steps[:-1] if type(s).__name__ not in SCALERS]
        if bad:
            raise TypeError(
                f"from_sklearn: Pipeline steps before the classifier must be {' or '.join(SCALERS)}; got "
                f"{bad}. Use cfx.models.from_predict_proba(pipeline.predict_proba, n_features, n_classes) "
                "for any other pipeline (a black box for gradient-free generators)."
            )
    est, kind = steps[-1], type(steps[-1]).__name__
    if not hasattr(est, "classes_") and kind in _NAMES + trees.ESTIMATOR_CLASSES:
        raise ValueError(f"from_sklearn: the {kind} is not fitted (call .fit(X, y) first)")
    if kind in trees.ESTIMATOR_CLASSES:
        if len(steps) > 1:
            raise TypeError(
                "from_sklearn: a tree ensemble inside a Pipeline is not supported (trees need no "
                "scaling); pass the fitted ensemble itself"
            )
        return trees.from_sklearn_trees(est)
    if kind in ("LogisticRegression", "LinearSVC", "SGDClassifier"):
        layers, out = _linear(est)
        activation = "identity"
    elif kind == "MLPClassifier":
        layers, out = _mlp(est)
        activation = est.activation
    else:
        raise TypeError(
            f"from_sklearn: {kind} has no exact JAX translation; supported: {', '.join(SUPPORTED)}. "
            f"For any other model use cfx.models.from_predict_proba(estimator.predict_proba, n_features, "
            f"n_classes): a black box for gradient-free generators (growing_spheres)."
        )
    d = int(est.n_features_in_)
    prep = [_scaler(s, d) for s in steps[:-1]]
    apply = SklearnApply(tuple(k for k, _ in prep), activation, out, name=kind)
    params = {"prep": [p for _, p in prep], "layers": layers}
    return Classifier(apply, params, n_features=d, n_classes=max(2, len(est.classes_)))


# ----------------------------------------------------------------------------- black boxes
@dataclasses.dataclass(frozen=True)
class HostProbabilities:
    """``apply_fn`` of :func:`from_predict_proba`: logits = log max(fn(x), eps) computed on the
    host through ``jax.pure_callback``. ``black_box = True``: no gradient exists (generators that
    need one are refused before compiling) and the search's last step takes none."""

    fn: Callable[[np.ndarray], Any]
    n_features: int
    n_classes: int
    eps: float = 1e-7
    black_box = True
    differentiable = False

    def host(self, x) -> np.ndarray:
        """Any batch axes (..., d) -> one 2-D call (m, d) -> (..., C) float32 log-probabilities."""
        x = np.asarray(x)
        flat = x.reshape(-1, self.n_features)
        probs = np.zeros((0, self.n_classes)) if flat.shape[0] == 0 else _checked_probs(self, flat)
        return np.log(np.maximum(probs, self.eps)).astype(np.float32).reshape(x.shape[:-1] + (self.n_classes,))

    def __call__(self, params: Any, x: jax.Array) -> jax.Array:
        shape = jax.ShapeDtypeStruct(x.shape[:-1] + (self.n_classes,), jnp.float32)
        # expand_dims: under vmap the callback gets the whole batch at once (one host call), not one per row
        return jax.pure_callback(self.host, shape, x, vmap_method="expand_dims")


def _checked_probs(apply: HostProbabilities, flat: np.ndarray) -> np.ndarray:
    probs = np.asarray(apply.fn(flat), np.float64)
    if probs.shape != (flat.shape[0], apply.n_classes):
        raise ValueError(
            f"from_predict_proba: fn returned shape {probs.shape} for input {flat.shape}; expected "
            f"({flat.shape[0]}, n_classes={apply.n_classes}) class probabilities"
        )
    return probs


def from_predict_proba(
    fn: Callable[[np.ndarray], Any], n_features: int, n_classes: int, *, eps: float = 1e-7
) -> Classifier:
    """Any host function ``fn(X) -> P`` of a 2-D numpy array X (m, d) returning class
    probabilities P (m, C) as a black-box :class:`cfx.Classifier` (``clf.black_box`` is True).

    Inside a search the model is called through ``jax.pure_callback``: once per step for the
    whole batch (every factual, counterfactual and sample flattened to one (m, d) array and
    reshaped back), so ``fn`` should be vectorised (``estimator.predict_proba``, XGBoost, a
    PyTorch model under ``torch.no_grad``). Logits are log max(P, eps). Only gradient-free
    generators apply (``growing_spheres``); ``cfx.evaluate`` and ``cfx.explain`` work.
    ``fn`` is called once here on two zero rows to check its output shape.

    Example::

        clf = cfx.models.from_predict_proba(forest.predict_proba, n_features=d, n_classes=2)
        cfx.generate(cfx.generators.GrowingSpheres(), clf, X[:10], target=1, key=jax.random.key(0))
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable X (m, d) -> probabilities (m, C); got {type(fn).__name__}")
    for name, v, low in (("n_features", n_features, 1), ("n_classes", n_classes, 2)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < low:
            raise ValueError(f"{name} must be an int >= {low}; got {v!r}")
    apply = HostProbabilities(fn, int(n_features), int(n_classes), float(eps))
    _checked_probs(apply, np.zeros((2, apply.n_features), np.float32))
    return Classifier(apply, {}, n_features=apply.n_features, n_classes=apply.n_classes)


__all__ = ["from_sklearn", "from_predict_proba", "SklearnApply", "HostProbabilities", "SUPPORTED"]

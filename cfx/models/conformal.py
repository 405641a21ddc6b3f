"""Split-conformal classification: calibrate q̂ once, then prediction sets and smooth set sizes.

For a classifier with p(y|x) = softmax(f(x))_y (SPEC §2–§3):

- conformity score  s(x, y) = 1 − p(y|x);
- q̂ = the (1 − α) quantile of the scores s(x_i, y_i) on n held-out calibration points:
    ``finite_sample=False`` (default): the plain quantile ``numpy.quantile(s, 1 − α)``
      (linear interpolation, Julia's ``StatsBase.quantile``), as SPEC §2 prescribes for the
      smooth set size that ECCCo optimises;
    ``finite_sample=True``: the ⌈(n + 1)(1 − α)⌉-th smallest score, i.e. the
      ⌈(n + 1)(1 − α)⌉ / n quantile, which guarantees coverage >= 1 − α for exchangeable data;
- prediction set  C(x) = {y : s(x, y) <= q̂};
- smooth set size (Stutz et al. 2022)  Ω(x) = max(0, Σ_y σ((q̂ − s(x, y)) / T) − κ), T = 0.1, κ = 1.

The two quantiles differ by at most one order statistic (O(1/n)); the plain one is the default
because it is what ECCCo's smooth set-size term and its published numbers use.

Example::

    fit_part, cal_part = train.split(test_size=0.5, seed=0)   # the reference: 50% / 50%
    clf = cfx.models.fit(fit_part, "mlp")
    conf = calibrate(clf, cal_part, alpha=0.05)                # a cfx.Classifier with q̂
    conf.prediction_sets(test.X)                               # (n, C) bool
    conf.smooth_set_size(test.X)                               # (n,)
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cfx._validate import as_real, float_dtype
from cfx.classifier import Classifier


def smooth_set_size(probs: jax.Array, q_hat, temperature=0.1, kappa=1.0) -> jax.Array:
    """Ω = max(0, Σ_y σ((q̂ − (1 − p_y)) / T) − κ) over the last axis of ``probs`` (…, C) -> (…).

    Pure and traceable (ECCCo's set-size penalty and the ``set_size`` metric use it)."""
    membership = jax.nn.sigmoid((q_hat - (1.0 - probs)) / temperature)
    return jnp.maximum(0.0, jnp.sum(membership, axis=-1) - kappa)


def conformal_quantile(scores, alpha: float, *, finite_sample: bool = False) -> float:
    """q̂ from calibration scores (n,): the plain (1 − α) quantile, or with ``finite_sample``
    the ⌈(n + 1)(1 − α)⌉-th smallest score. Raises when n < ⌈(1 − α) / α⌉ (too few points
    for the corrected rank to exist)."""
    s = np.sort(np.asarray(scores, np.float64).ravel())
    n = s.size
    if n < min_calibration_size(alpha):
        raise ValueError(
            f"calibration_data has {n} rows; alpha={alpha} needs at least "
            f"{min_calibration_size(alpha)} (ceil((1 - alpha) / alpha))"
        )
    if finite_sample:
        return float(s[math.ceil((n + 1) * (1.0 - alpha)) - 1])
    return float(np.quantile(s, 1.0 - alpha))


def min_calibration_size(alpha: float) -> int:
    """The fewest calibration points for which ⌈(n + 1)(1 − α)⌉ <= n."""
    return max(1, math.ceil((1.0 - alpha) / alpha - 1e-9))


@jax.tree_util.register_pytree_node_class
class ConformalClassifier(Classifier):
    """A :class:`cfx.Classifier` with a split-conformal quantile q̂ (build with :func:`calibrate`).

    Logits and probabilities are the wrapped model's; it works everywhere a Classifier does
    (``cfx.generate``, ``cfx.evaluate``, ``jax.jit``). PyTree children: ``params``, ``q_hat``,
    ``alpha``, ``temperature``, ``kappa`` (float32 scalars), so recalibrating, retraining or
    a new T / κ never recompiles; ``apply_fn``, ``n_features``, ``n_classes`` are static.

    Attributes:
      q_hat: q̂, the (1 − α) quantile of s(x, y) = 1 − p(y|x) on the calibration data.
      alpha: the miscoverage level α the quantile was taken at.
      temperature, kappa: T and κ of the smooth set size.
    """

    def __init__(
        self,
        apply_fn,
        params: Any,
        n_features: int,
        n_classes: int | None = None,
        *,
        q_hat,
        alpha=0.05,
        temperature=0.1,
        kappa=1.0,
    ):
        super().__init__(apply_fn, params, n_features, n_classes)
        self.q_hat = jnp.asarray(q_hat, float_dtype())
        self.alpha = jnp.asarray(alpha, float_dtype())
        self.temperature = jnp.asarray(temperature, float_dtype())
        self.kappa = jnp.asarray(kappa, float_dtype())

    def tree_flatten(self):
        """PyTree protocol: params, q̂, α, temperature, κ are children; apply_fn and sizes are static."""
        children = (self.params, self.q_hat, self.alpha, self.temperature, self.kappa)
        return children, (self.apply_fn, self.n_features, self.n_classes)

    @classmethod
    def tree_unflatten(cls, aux, children):
        """PyTree protocol: rebuild from the static data and the children without re-validating."""
        obj = object.__new__(cls)
        obj.apply_fn, obj.n_features, obj.n_classes = aux
        obj.params, obj.q_hat, obj.alpha, obj.temperature, obj.kappa = children
        return obj

    def replace(self, params: Any) -> "ConformalClassifier":
        """The same model and q̂ with new parameters (recalibrate after retraining)."""
        _, aux = self.tree_flatten()
        return ConformalClassifier.tree_unflatten(aux, (params, self.q_hat, self.alpha, self.temperature, self.kappa))

    @property
    def base(self) -> Classifier:
        """The wrapped model as a plain :class:`cfx.Classifier`."""
        return Classifier.tree_unflatten((self.apply_fn, self.n_features, self.n_classes), (self.params,))

    def __repr__(self) -> str:
        name = getattr(self.apply_fn, "__qualname__", type(self.apply_fn).__name__)
        return (
            f"ConformalClassifier({name}, n_features={self.n_features}, n_classes={self.n_classes}, "
            f"alpha={float(self.alpha):.3g}, q_hat={float(self.q_hat):.4g})"
        )

    # --- traced (usable inside jit / vmap / grad) ------------------------------------
    def raw_scores(self, x: jax.Array) -> jax.Array:
        """s(x, y) = 1 − p(y|x): (C,) or (n, C)."""
        return 1.0 - jax.nn.softmax(self.raw_logits(x), axis=-1)

    def raw_prediction_sets(self, x: jax.Array) -> jax.Array:
        """{y : s(x, y) <= q̂} as a bool mask (C,) or (n, C)."""
        return self.raw_scores(x) <= self.q_hat

    def raw_smooth_set_size(self, x: jax.Array) -> jax.Array:
        """Ω(x) (scalar or (n,)); see :func:`smooth_set_size`."""
        return smooth_set_size(jax.nn.softmax(self.raw_logits(x), axis=-1), self.q_hat, self.temperature, self.kappa)

    # --- jitted conveniences ---------------------------------------------------------
    def prediction_sets(self, x) -> jax.Array:
        """(n, C) bool (or (C,) for one example): y is in the set iff 1 − p(y|x) <= q̂."""
        return _prediction_sets(self, jnp.asarray(x, float_dtype()))

    def smooth_set_size(self, x) -> jax.Array:
        """Ω(x) = max(0, Σ_y σ((q̂ − s(x, y)) / T) − κ): (n,) or a scalar."""
        return _smooth_set_size(self, jnp.asarray(x, float_dtype()))

    def set_sizes(self, x) -> jax.Array:
        """|C(x)|, the number of classes in each prediction set: (n,) int32."""
        return jnp.sum(self.prediction_sets(x), axis=-1, dtype=jnp.int32)

    def coverage(self, x, y) -> float:
        """Empirical coverage: the share of rows whose true label y_i is in C(x_i)."""
        sets = np.asarray(self.prediction_sets(np.asarray(x, float_dtype()).reshape(-1, self.n_features)))
        y = np.asarray(y).ravel()
        return float(sets[np.arange(len(y)), y].mean())


@jax.jit
def _prediction_sets(clf: ConformalClassifier, x: jax.Array) -> jax.Array:
    return clf.raw_prediction_sets(x)


@jax.jit
def _smooth_set_size(clf: ConformalClassifier, x: jax.Array) -> jax.Array:
    return clf.raw_smooth_set_size(x)


def calibrate(
    classifier: Classifier,
    calibration_data,
    alpha: float = 0.05,
    *,
    temperature: float = 0.1,
    kappa: float = 1.0,
    finite_sample: bool = False,
) -> ConformalClassifier:
    """Split-conformal calibration of ``classifier`` on held-out data.

    q̂ = Quantile_{1−α}({1 − p(y_i | x_i)}_i) over the calibration rows (plain quantile by
    default; ``finite_sample=True``: the ⌈(n+1)(1−α)⌉-th smallest score, coverage >= 1 − α
    guaranteed). Calibrate on data the model was not trained on (the ECCCo reference fits on
    50% of the training data and calibrates on the other 50%).

    Args:
      classifier: any :class:`cfx.Classifier` (a ConformalClassifier is recalibrated).
      calibration_data: a :class:`cfx.data.Dataset` or a pair ``(X (n, d), y (n,))``.
      alpha: miscoverage level in (0, 1); sets aim to contain the true label w.p. 1 − α.
      temperature: T > 0 of the smooth set size.
      kappa: κ >= 0, the set size Ω does not penalise (1: singletons are free).
      finite_sample: use the finite-sample-corrected rank instead of the plain quantile.

    Returns:
      :class:`ConformalClassifier` with the same ``apply_fn`` and ``params``. Raises
      FloatingPointError when the model's probabilities are not finite on a calibration row.

    Example::

        conf = cfx.models.conformal.calibrate(clf, cal, alpha=0.1)
        conf.coverage(test.X, test.y)      # about 0.9
    """
    if not isinstance(classifier, Classifier):
        raise TypeError(f"classifier must be a cfx.Classifier; got {type(classifier).__name__}")
    a = as_real("alpha", alpha)
    if a.shape != () or not (0.0 < float(a) < 1.0):
        raise ValueError(f"alpha must be a number in (0, 1); got {alpha!r}")
    t = as_real("temperature", temperature)
    if t.shape != () or not (np.isfinite(t) and t > 0):
        raise ValueError(f"temperature must be a finite number > 0; got {temperature!r}")
    k = as_real("kappa", kappa)
    if k.shape != () or not (np.isfinite(k) and k >= 0):
        raise ValueError(f"kappa must be a finite number >= 0; got {kappa!r}")
    X, y = _calibration_arrays(calibration_data, classifier)
    if len(y) < min_calibration_size(float(a)):  # before the model runs: nothing is compiled for a refusal
        raise ValueError(
            f"calibration_data has {len(y)} rows; alpha={float(a)} needs at least "
            f"{min_calibration_size(float(a))} (ceil((1 - alpha) / alpha))"
        )
    probs = np.asarray(jax.nn.softmax(classifier.logits(X), axis=-1))
    scores = 1.0 - probs[np.arange(len(y)), y]
    if not np.isfinite(scores).all():  # overflowing logits: a NaN q̂ would only fail later, far from here
        bad = np.flatnonzero(~np.isfinite(scores))
        raise FloatingPointError(
            f"calibrate: the classifier's probabilities are NaN or inf on {bad.size} calibration "
            f"rows (first: row {int(bad[0])}); its logits overflow there, so q̂ is undefined"
        )
    q_hat = conformal_quantile(scores, float(a), finite_sample=bool(finite_sample))
    return ConformalClassifier(
        classifier.apply_fn,
        classifier.params,
        classifier.n_features,
        classifier.n_classes,
        q_hat=float_dtype()(q_hat),
        alpha=float_dtype()(a),
        temperature=float_dtype()(t),
        kappa=float_dtype()(k),
    )


def _calibration_arrays(data, classifier: Classifier) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(data, "X") and hasattr(data, "y"):
        X, y = data.X, data.y
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = data
    else:
        raise TypeError(f"calibration_data must be a cfx.data.Dataset or a pair (X, y); got {type(data).__name__}")
    X = np.asarray(X, float_dtype())
    y_raw = np.asarray(y)
    if X.ndim != 2 or X.shape[1] != classifier.n_features:
        raise ValueError(
            f"calibration_data.X must have shape (n, {classifier.n_features}) for this classifier; got {X.shape}"
        )
    if y_raw.shape != (X.shape[0],):
        raise ValueError(
            f"calibration_data.y must have shape ({X.shape[0]},) (one label per row of X); got {y_raw.shape}"
        )
    if not np.issubdtype(y_raw.dtype, np.integer) and not np.all(np.mod(y_raw, 1) == 0):
        raise ValueError("calibration_data.y must hold integer class labels")
    y = y_raw.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= classifier.n_classes):
        raise ValueError(
            f"calibration_data.y has labels in [{y.min()}, {y.max()}]; the classifier has "
            f"{classifier.n_classes} classes (0 .. {classifier.n_classes - 1})"
        )
    if not np.all(np.isfinite(X)):
        raise ValueError("calibration_data.X contains NaN or infinite values")
    return X, y

"""The classifier contract: a pure ``apply_fn(params, x) -> logits`` and its parameters.

A :class:`Classifier` is a PyTree whose only array leaves are ``params``; ``apply_fn``,
``n_features`` and ``n_classes`` are static. New parameters (retraining, counterfactual
training, recourse dynamics) therefore never recompile anything that takes a classifier.
"""

from __future__ import annotations

from typing import Any, Callable

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from cfx._validate import float_dtype

ApplyFn = Callable[[Any, jax.Array], jax.Array]


def two_class_logits(logits: jax.Array) -> jax.Array:
    """A single binary logit f (..., 1) becomes [0, f] (..., 2), so softmax gives (1 − σ(f), σ(f));
    logits with C >= 2 columns are returned unchanged. The one place this expansion lives."""
    if logits.shape[-1] != 1:
        return logits
    return jnp.concatenate([jnp.zeros_like(logits), logits], axis=-1)


@jax.tree_util.register_pytree_node_class
class Classifier:
    """Any pure JAX classifier: ``logits = apply_fn(params, x)``.

    Args:
      apply_fn: pure function ``(params, x) -> logits`` for a batch ``x`` of shape (n, d)
        returning (n, C). A model with one output column is read as binary logit-BCE and
        presented as two-class logits ``[0, f]``.
      params: any PyTree of arrays.
      n_features: d, the input width (checked against every input before compiling).
      n_classes: C; inferred with ``jax.eval_shape`` when omitted.

    Example::

        clf = cfx.Classifier(lambda p, x: x @ p["w"] + p["b"], {"w": w, "b": b}, n_features=2)
        clf.probs(x)      # (n, 2) or (2,) for one example
    """

    def __init__(self, apply_fn: ApplyFn, params: Any, n_features: int, n_classes: int | None = None):
        if not callable(apply_fn):
            raise TypeError(f"apply_fn must be callable (params, x) -> logits, got {type(apply_fn).__name__}")
        if not isinstance(n_features, (int, np.integer)) or n_features < 1:
            raise ValueError(f"n_features must be a positive int, got {n_features!r}")
        self.apply_fn = apply_fn
        self.params = params
        self.n_features = int(n_features)
        if n_classes is None:
            try:
                out = jax.eval_shape(apply_fn, params, jax.ShapeDtypeStruct((1, self.n_features), float_dtype()))
            except NOT_TRACEABLE as err:
                raise not_traceable(apply_fn) from err
            if out.ndim != 2:
                raise ValueError(f"apply_fn must return logits of shape (n, C) for x of shape (n, d); got {out.shape}")
            n_classes = max(int(out.shape[-1]), 2)
        self.n_classes = int(n_classes)

    # --- PyTree protocol: params are the only children -------------------------------
    def tree_flatten(self):
        """PyTree protocol: ``params`` is the only child; apply_fn, n_features, n_classes are static."""
        return (self.params,), (self.apply_fn, self.n_features, self.n_classes)

    @classmethod
    def tree_unflatten(cls, aux, children):
        """PyTree protocol: rebuild from the static data and ``(params,)`` without re-validating."""
        obj = object.__new__(cls)
        obj.apply_fn, obj.n_features, obj.n_classes = aux
        (obj.params,) = children
        return obj

    @classmethod
    def from_probs(
        cls, prob_fn: ApplyFn, params: Any, n_features: int, n_classes: int | None = None, eps: float = 1e-7
    ) -> "Classifier":
        """Wrap a model that outputs probabilities (a softmax head): logits = log max(p, eps).
        A single output column is read as p(y = 1 | x) of a binary model.

        softmax(log p) = p for a normalised p, so predictions and p(y|x) are unchanged; ``eps``
        keeps the log (and its gradient) finite where a probability underflows to 0.

        Example::

            clf = cfx.Classifier.from_probs(lambda p, x: jax.nn.softmax(x @ p), W, n_features=2)
        """
        return cls(LogProbabilities(prob_fn, float(eps)), params, n_features, n_classes)

    @property
    def black_box(self) -> bool:
        """True for a host function called through ``jax.pure_callback``
        (:func:`cfx.models.from_predict_proba`): no gradient, no tracing of the model."""
        return bool(getattr(self.apply_fn, "black_box", False))

    @property
    def differentiable(self) -> bool:
        """False where the model has no useful gradient (a black box, a tree ensemble): only
        gradient-free generators apply (``uses_gradient = False``)."""
        return bool(getattr(self.apply_fn, "differentiable", True)) and not self.black_box

    def replace(self, params: Any) -> "Classifier":
        """The same model with new parameters (no recompilation downstream)."""
        return Classifier.tree_unflatten((self.apply_fn, self.n_features, self.n_classes), (params,))

    def __repr__(self) -> str:
        name = getattr(self.apply_fn, "__qualname__", type(self.apply_fn).__name__)
        return f"Classifier({name}, n_features={self.n_features}, n_classes={self.n_classes})"

    # --- traced forward passes (usable inside jit / vmap / grad) ---------------------
    def raw_logits(self, x: jax.Array) -> jax.Array:
        """Logits (C,) or (n, C); traceable, no jit of its own."""
        single = x.ndim == 1
        xb = x[None] if single else x
        out = two_class_logits(self.apply_fn(self.params, xb))
        return out[0] if single else out

    def verdict_logits(self, x: jax.Array, logits: jax.Array) -> jax.Array:
        """The logits a convergence verdict reads at x (..., d): ``logits`` (from the gradient's
        forward pass), or a plain forward pass where that one is stochastic
        (``apply_fn.stochastic_under_grad``: dropout active only under differentiation)."""
        if not getattr(self.apply_fn, "stochastic_under_grad", False):
            return logits
        return self.raw_logits(x.reshape(-1, x.shape[-1])).reshape(logits.shape)

    # --- jitted conveniences ---------------------------------------------------------
    # A batch of n rows is padded to the next bucket (a power of two, at least MIN_BUCKET), so
    # outside code that calls with ever-changing batch sizes compiles a handful of programs,
    # not one per size; the padded rows are zeros and are cut off again.
    def logits(self, x) -> jax.Array:
        """Logits for one example (d,) -> (C,) or a batch (n, d) -> (n, C)."""
        return _bucketed(_logits, self, x)

    def probs(self, x) -> jax.Array:
        """softmax(logits): (C,) or (n, C)."""
        return _bucketed(_probs, self, x)

    def predict_proba(self, x) -> np.ndarray:
        """scikit-learn style: p(y | x) as a numpy array (n, C) for x (n, d) (a row (d,): (1, C)).
        For libraries that call the model with changing batch sizes (bucketed, see ``probs``)."""
        x = np.asarray(x, float_dtype())
        return np.asarray(self.probs(x[None] if x.ndim == 1 else x))

    def predict(self, x) -> jax.Array:
        """argmax of the logits: scalar or (n,)."""
        if isinstance(x, jax.core.Tracer):
            return jnp.argmax(self.logits(x), axis=-1)
        return jnp.asarray(np.argmax(np.asarray(self.logits(x)), axis=-1))


@dataclasses.dataclass(frozen=True)
class LogProbabilities:
    """``apply_fn`` of :meth:`Classifier.from_probs`: log max(prob_fn(params, x), eps).

    Hashable (a frozen dataclass), so it can be a Classifier's static ``apply_fn``."""

    prob_fn: ApplyFn
    eps: float = 1e-7

    def __call__(self, params: Any, x: jax.Array) -> jax.Array:
        probs = self.prob_fn(params, x)
        if probs.shape[-1] == 1:  # p(y = 1 | x) of a binary model: both columns explicitly
            probs = jnp.concatenate([1.0 - probs, probs], axis=-1)
        return jnp.log(jnp.maximum(probs, self.eps))


#: What JAX raises when a model's code needs concrete values (numpy, sklearn, torch on a tracer).
NOT_TRACEABLE = (
    jax.errors.TracerArrayConversionError,
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
)


def not_traceable(apply_fn) -> TypeError:
    """The error for an ``apply_fn`` that JAX cannot trace: it points to the black-box path."""
    name = getattr(apply_fn, "__qualname__", type(apply_fn).__name__)
    return TypeError(
        f"apply_fn {name} is not a JAX-traceable function (it converts its input to numpy or reads "
        "concrete values). Wrap a host model with cfx.models.from_predict_proba(fn, n_features, "
        "n_classes) (a black box for gradient-free generators), or translate a scikit-learn model "
        "with cfx.models.from_sklearn(estimator)."
    )


_traceable: set = set()  # (apply_fn, params' structure and shapes, d) already traced once


def check_traceable(clf: "Classifier") -> None:
    """Trace ``apply_fn`` once per model structure (abstractly, nothing runs); a function that
    needs concrete values gets the error of :func:`not_traceable`, naming ``from_predict_proba``."""
    if clf.__dict__.get("_traced_once"):  # this object was checked: the fast path of repeated calls
        return
    leaves, treedef = jax.tree_util.tree_flatten(clf.params)
    try:
        key = (
            clf.apply_fn,
            treedef,
            tuple((np.shape(a), str(getattr(a, "dtype", ""))) for a in leaves),
            clf.n_features,
        )
        hash(key)
    except TypeError:  # an unhashable apply_fn or leaf: trace every time
        key = None
    if key is not None and key in _traceable:
        return
    try:
        jax.eval_shape(clf.raw_logits, jax.ShapeDtypeStruct((1, clf.n_features), float_dtype()))
    except NOT_TRACEABLE as err:
        raise not_traceable(clf.apply_fn) from err
    if key is not None:
        _traceable.add(key)
    clf._traced_once = True


MIN_BUCKET = 8


def bucket(n: int) -> int:
    """The padded batch size for n rows: the next power of two, at least :data:`MIN_BUCKET`."""
    return max(MIN_BUCKET, 1 << max(0, int(n) - 1).bit_length())


def _bucketed(fn, clf: Classifier, x) -> jax.Array:
    if isinstance(x, jax.core.Tracer):  # inside someone's jit: their program fixes the shape
        return fn(clf, jnp.asarray(x, float_dtype()))
    arr = np.asarray(x, float_dtype())
    if arr.ndim not in (1, 2) or arr.shape[-1] != clf.n_features:
        raise ValueError(f"x must have shape ({clf.n_features},) or (n, {clf.n_features}); got {arr.shape}")
    single = arr.ndim == 1
    rows = arr[None] if single else arr
    n = rows.shape[0]
    padded = np.zeros((bucket(n), rows.shape[1]), float_dtype())
    padded[:n] = rows
    # cut on the host: an eager slice of a device array would compile a program per n again
    try:
        out = np.asarray(fn(clf, padded))[:n]
    except NOT_TRACEABLE as err:
        raise not_traceable(clf.apply_fn) from err
    return jnp.asarray(out[0] if single else out)


@jax.jit
def _logits(clf: Classifier, x: jax.Array) -> jax.Array:
    return clf.raw_logits(x)


@jax.jit
def _probs(clf: Classifier, x: jax.Array) -> jax.Array:
    return jax.nn.softmax(clf.raw_logits(x), axis=-1)

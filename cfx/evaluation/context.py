"""The evaluation context: everything metrics need that depends on (model, data), built once.

:func:`context` computes the training data arrays, the model's predictions on them, the
per-feature MAD and the resolved constraints; :func:`cfx.evaluate` builds one when not given
and adds the result's threshold τ. Pass a prebuilt context to evaluate several results
(generators, runs) against the same (model, data) without recomputing it; its arrays are
jit arguments, so a new context of the same shapes never recompiles the metrics.
"""

from __future__ import annotations

from typing import Iterable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from cfx._validate import float_dtype
from cfx.classifier import Classifier
from cfx.constraints import Constraints, ResolvedConstraints
from cfx.data.dataset import Dataset
from cfx.stats import median_absolute_deviation
from cfx.evaluation import batching

#: Which context fields each need stands for (the fields a metric's traced fn sees).
NEED_FIELDS = {
    "classifier": ("classifier", "threshold"),
    "data": ("X", "y", "predictions", "mad", "n_neighbors", "ynn_neighbors"),
    "constraints": ("constraints",),
    "conditional_samples": ("conditional_samples",),
    "q_hat": ("q_hat",),
}


@struct.dataclass
class EvaluationContext:
    """What the metrics of one (classifier, data) pair share (a PyTree).

    Attributes:
      classifier: the model that judges validity (its params are array leaves).
      constraints: :class:`ResolvedConstraints` violations are counted against.
      threshold: τ of the result being evaluated (scalar; set by :func:`cfx.evaluate` from
        ``result.threshold``), None in a freshly built context.
      X: (N, d) float32 reference data (usually the training split), or None.
      y: (N,) int32 true labels of X, or None.
      predictions: (N,) int32 argmax f(X) under ``classifier``, or None.
      mad: (d,) float32 MAD_j = median_i |X_ij − median_i X_ij| (0 -> 1), or None.
      conditional_samples: (C, k, d) samples of the model's conditional p_θ(x | y) per class
        (for unfaithfulness), or None until a sampler fills it.
      q_hat: scalar conformal quantile q̂ (for set size), or None until calibrated.
      n_neighbors, ynn_neighbors: static neighbour counts of implausibility and yNN, clipped
        to N (set by :func:`cfx.evaluate`).
    """

    classifier: Classifier | None
    constraints: ResolvedConstraints | None
    threshold: jax.Array | None = None
    X: jax.Array | None = None
    y: jax.Array | None = None
    predictions: jax.Array | None = None
    mad: jax.Array | None = None
    conditional_samples: jax.Array | None = None
    q_hat: jax.Array | None = None
    n_neighbors: int | None = struct.field(pytree_node=False, default=None)
    ynn_neighbors: int | None = struct.field(pytree_node=False, default=None)

    @property
    def n_features(self) -> int:
        """The classifier's number of features d."""
        return self.classifier.n_features

    @property
    def n_data(self) -> int:
        """N, the number of reference rows (0 without data)."""
        return 0 if self.X is None else int(self.X.shape[0])

    def has(self, needs: Iterable[str]) -> bool:
        """Whether every need is met (its first field is not None)."""
        return all(getattr(self, NEED_FIELDS[n][0]) is not None for n in needs)

    def view(self, needs: Iterable[str]) -> "EvaluationContext":
        """The context with every slot outside ``needs`` set to None: what a metric's traced
        function sees, so its compilation depends only on what it uses."""
        keep = {f for n in needs for f in NEED_FIELDS[n]}
        drop = {f: None for fields in NEED_FIELDS.values() for f in fields if f not in keep}
        return self.replace(**drop)


def resolve_constraints(constraints, data: Dataset | None, d: int) -> ResolvedConstraints:
    """``constraints`` if given, else the data's schema, else unconstrained."""
    if constraints is None:
        constraints = data.schema.constraints() if data is not None else Constraints()
    if isinstance(constraints, Constraints):
        return constraints.resolve(d)
    if isinstance(constraints, ResolvedConstraints):
        if tuple(constraints.mutability.shape) != (d,):
            raise ValueError(f"constraints resolved for {constraints.mutability.shape[0]} features; expected {d}")
        return constraints
    raise TypeError(
        f"constraints must be a cfx.Constraints, ResolvedConstraints or None, got {type(constraints).__name__}"
    )


def _check_data(classifier: Classifier, data) -> None:
    if data is None:
        return
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a cfx.data.Dataset or None, got {type(data).__name__}")
    if data.n_features != classifier.n_features:
        raise ValueError(f"data has {data.n_features} features but the classifier takes {classifier.n_features}")
    if len(data) == 0:
        raise ValueError("data is empty: implausibility, yNN and MAD need at least one row")


def context(
    classifier: Classifier,
    data: Dataset | None = None,
    *,
    constraints: Constraints | ResolvedConstraints | None = None,
    conditional_samples=None,
    q_hat=None,
) -> EvaluationContext:
    """Build the :class:`EvaluationContext` of one (classifier, data) pair.

    Args:
      classifier: the model to judge counterfactuals by.
      data: reference data (usually the training split); enables ``mad_l1``,
        ``implausibility`` and ``ynn``. Its schema supplies the constraints when
        ``constraints`` is None.
      constraints: constraints to count violations against; default: ``data.schema``, else
        none.
      conditional_samples: optional (C, k, d) samples of p_θ(x | y) per class; enables
        ``unfaithfulness``.
      q_hat: optional conformal quantile q̂ (scalar); enables ``set_size``. Default: the
        classifier's own q̂ when it is calibrated (a ``cfx.models.conformal.ConformalClassifier``).

    Example::

        ctx = cfx.evaluation.context(clf, train)
        for res in results:                      # one context, many results
            cfx.evaluate(res, clf, context=ctx)
    """
    if not isinstance(classifier, Classifier):
        raise TypeError(f"classifier must be a cfx.Classifier, got {type(classifier).__name__}")
    _check_data(classifier, data)
    d = classifier.n_features
    ctx = EvaluationContext(classifier=classifier, constraints=resolve_constraints(constraints, data, d))
    if data is not None:
        X = jnp.asarray(data.X, float_dtype())
        N = X.shape[0]
        ctx = ctx.replace(
            X=X,
            y=jnp.asarray(data.y, jnp.int32),
            predictions=batching.predict_labels(classifier, X, batch_size=batching.chunk_size(N, d, 1)),
            mad=jnp.asarray(median_absolute_deviation(data.X)),
        )
    if conditional_samples is not None:
        s = jnp.asarray(conditional_samples, float_dtype())
        if s.ndim != 3 or s.shape[0] != classifier.n_classes or s.shape[2] != d or s.shape[1] == 0:
            raise ValueError(
                f"conditional_samples must have shape (C={classifier.n_classes}, k >= 1, d={d}); got {tuple(s.shape)}"
            )
        ctx = ctx.replace(conditional_samples=s)
    if q_hat is None:
        q_hat = getattr(classifier, "q_hat", None)  # a calibrated (conformal) classifier carries q̂
    if q_hat is not None:
        q = np.asarray(q_hat, float_dtype())
        if q.shape != () or not np.isfinite(q):
            raise ValueError(f"q_hat must be a finite scalar, got {q_hat!r}")
        ctx = ctx.replace(q_hat=jnp.asarray(q))
    return ctx


def same_classifier(a: Classifier, b: Classifier) -> bool:
    """Same model structure and equal parameters (identical leaves short-circuit)."""
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    if ta != tb:
        return False
    return all(
        x is y or (np.shape(x) == np.shape(y) and np.array_equal(np.asarray(x), np.asarray(y))) for x, y in zip(la, lb)
    )

"""Regression models and target intervals: "what change brings the prediction into [lo, hi]".

A :class:`Regressor` is ``predict_fn(params, x) -> ŷ`` (n,) in the target's units. Its target
interval, ``regressor.within(lo, hi)`` (``hi = inf``: ŷ ≥ lo; ``lo = -inf``: ŷ ≤ hi), is a
binary :class:`cfx.Classifier` with the single logit

    g(x) = min(ŷ(x) − lo, hi − ŷ(x)) / s,        p(inside | x) = σ(g(x)),

s > 0 a scale in target units (default: the training targets' standard deviation). So
p ≥ ½ ⇔ lo ≤ ŷ ≤ hi: validity at τ = ½ is membership, the search's threshold rule converges on
the interval, and every yloss becomes an interval loss: cross-entropy ``softplus(−g)``, hinge
``max(0, 1 − g)`` (inside by at least s), ``mse_probs`` ``2(1 − σ(g))²``. lo, hi and s are
leaves of the classifier's params: a new interval never recompiles the search. Target class 1
is "inside". A τ other than ½ asks for a margin: g ≥ logit(τ), i.e. s·logit(τ) inside.

Generators that need class probabilities or class energies (ECCCo's conformal set size and
energy, Probe's invalidation rate, CLUE's predictive entropy) are refused on an interval
target by ``cfx.generate`` before compiling (``Generator.regression_refusal``).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cfx._validate import as_real
from cfx.classifier import Classifier
from cfx.models.mlp import MLP, ModuleApply
from cfx.models.step import TrainState, train_epoch


@dataclasses.dataclass(frozen=True)
class RegressionApply:
    """ŷ = μ + σ · module(x)[:, 0]: a one-output flax module trained on standardised targets,
    answering in the target's units. params: ``{"model": variables, "y_mean": μ, "y_scale": σ}``."""

    module: Any

    def __call__(self, params: Any, x: jax.Array) -> jax.Array:
        return params["y_mean"] + params["y_scale"] * self.module.apply(params["model"], x)[:, 0]


@dataclasses.dataclass(frozen=True)
class IntervalLogits:
    """``apply_fn`` of an interval target: g = min(ŷ − lo, hi − ŷ)/s as one logit column (n, 1).

    params: ``{"model": the regressor's params, "lo", "hi", "scale"}``. ``regression`` marks it
    for the generator checks."""

    predict_fn: Callable
    regression = True

    def __call__(self, params: Any, x: jax.Array) -> jax.Array:
        y = _column(self.predict_fn(params["model"], x))
        return (jnp.minimum(y - params["lo"], params["hi"] - y) / params["scale"])[:, None]


def _column(y: jax.Array) -> jax.Array:
    return y[:, 0] if y.ndim == 2 else y


def is_regression(classifier) -> bool:
    """Whether ``classifier`` is a regression target (:meth:`Regressor.within`)."""
    return bool(getattr(getattr(classifier, "apply_fn", None), "regression", False))


@jax.tree_util.register_pytree_node_class
class Regressor:
    """A pure regression model ``predict_fn(params, x) -> ŷ`` ((n,) or (n, 1)), a PyTree whose
    only leaves are ``params`` (new parameters never recompile).

    Example::

        reg = cfx.models.fit_regressor(train, values, epochs=100)      # an MLP, one output
        reg.predict(test.X)                                           # (n,) in target units
        inside = reg.within(lo=2.0e5, hi=2.5e5)                       # a cfx.Classifier
        res = cfx.generate(cfx.generators.Wachter.from_data(train), inside, x, target=1, key=key)
    """

    def __init__(self, predict_fn: Callable, params: Any, n_features: int, scale: float = 1.0):
        if not callable(predict_fn):
            raise TypeError(f"predict_fn must be callable (params, x) -> y; got {type(predict_fn).__name__}")
        self.predict_fn, self.params, self.n_features, self.scale = predict_fn, params, int(n_features), float(scale)

    # the scale is host-side only (not in the static aux data): a refit never recompiles
    def tree_flatten(self):
        """PyTree protocol: ``params`` is the only child; predict_fn and n_features are static."""
        return (self.params,), (self.predict_fn, self.n_features)

    @classmethod
    def tree_unflatten(cls, aux, children):
        """PyTree protocol: rebuild from the static data and ``(params,)`` without re-validating."""
        obj = object.__new__(cls)
        obj.predict_fn, obj.n_features = aux
        (obj.params,) = children
        obj.scale = 1.0
        return obj

    def __repr__(self) -> str:
        return f"Regressor(n_features={self.n_features}, scale={self.scale:.4g})"

    def predict(self, x) -> np.ndarray:
        """ŷ (n,) for x (n, d) (a row (d,): a scalar)."""
        x = np.asarray(x, np.float32)
        out = np.asarray(_predict(self, x[None] if x.ndim == 1 else x))
        return out[0] if x.ndim == 1 else out

    def within(self, lo: float | None = None, hi: float | None = None, *, scale: float | None = None) -> Classifier:
        """The target interval [lo, hi] (None: unbounded on that side) as a binary Classifier,
        class 1 = inside (module docstring). ``scale`` s > 0 (default: the regressor's, the
        training targets' sd) sets how fast p(inside) leaves ½ at the interval's edges."""
        lo_v = -np.inf if lo is None else float(as_real("lo", lo))
        hi_v = np.inf if hi is None else float(as_real("hi", hi))
        for name, v in (("lo", lo_v), ("hi", hi_v)):
            if np.isnan(v):
                raise ValueError(f"{name} must be a number (or None for unbounded); got nan")
        if lo_v > hi_v:
            raise ValueError(f"lo must be <= hi; got lo={lo_v!r} > hi={hi_v!r}")
        if np.isinf(lo_v) and np.isinf(hi_v):
            raise ValueError("lo and hi: give at least one finite bound (the whole real line is no target)")
        s = self.scale if scale is None else float(as_real("scale", scale))
        if not (np.isfinite(s) and s > 0):
            raise ValueError(f"scale must be a finite number > 0; got {scale!r}")
        params = {"model": self.params, "lo": jnp.float32(lo_v), "hi": jnp.float32(hi_v), "scale": jnp.float32(s)}
        return Classifier(IntervalLogits(self.predict_fn), params, n_features=self.n_features, n_classes=2)

    def at_least(self, t: float, *, scale: float | None = None) -> Classifier:
        """ŷ ≥ t: :meth:`within` (t, None)."""
        return self.within(t, None, scale=scale)

    def at_most(self, t: float, *, scale: float | None = None) -> Classifier:
        """ŷ ≤ t: :meth:`within` (None, t)."""
        return self.within(None, t, scale=scale)


@jax.jit
def _predict(reg: Regressor, x: jax.Array) -> jax.Array:
    return _column(reg.predict_fn(reg.params, x))


def interval_labels(values, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """1[lo ≤ v ≤ hi] (int32) for true target values: the labels of "inside" for metrics that
    read target-class data (implausibility, Gravitational's target points)."""
    v = np.asarray(values, np.float64)
    lo = -np.inf if lo is None else lo
    hi = np.inf if hi is None else hi
    if lo > hi:
        raise ValueError(f"lo must be <= hi; got lo={lo!r} > hi={hi!r}")
    return ((v >= lo) & (v <= hi)).astype(np.int32)


def _mse(params, batch, key, *, apply, extra):
    """Weighted mean squared error Σ w (f(x) − y)² / Σ w on standardised targets."""
    err = apply(params, batch.x, key)[:, 0] - batch.y
    loss = jnp.sum(batch.w * err**2) / jnp.maximum(jnp.sum(batch.w), 1.0)
    return loss, (extra, {})


_TX = optax.inject_hyperparams(optax.adam)(learning_rate=0.0)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _epoch(apply: ModuleApply, batch_size: int, state, X, y, key, epoch):
    return train_epoch(
        state,
        X,
        y,
        jax.random.fold_in(key, epoch),
        apply=apply.train_logits,
        loss_fn=_mse,
        tx=_TX,
        batch_size=batch_size,
    )


def fit_regressor(
    data,
    values=None,
    *,
    widths: Sequence[int] = (64, 64),
    activation: str = "relu",
    epochs: int = 100,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> Regressor:
    """Train an MLP with one output on (X, values) by mean squared error (Adam, shuffled mini-batches,
    the same pure :func:`cfx.models.train_epoch` as ``fit``), on standardised targets
    z = (v − μ)/σ; the regressor answers μ + σ·f(x) in the targets' units.

    Args:
      data: a Dataset (its ``X``) or an (n, d) array.
      values: (n,) finite real targets.
      widths, activation: the MLP (``()``: linear regression).
      epochs, batch_size, learning_rate, seed: as :func:`cfx.models.fit`.
    """
    X = np.asarray(getattr(data, "X", data), np.float32)
    if X.ndim != 2 or len(X) < 2:
        raise ValueError(f"data must have X of shape (n, d) with n >= 2; got {X.shape}")
    v = np.asarray(as_real("values", values), np.float64) if values is not None else None
    if v is None or v.shape != (len(X),):
        raise ValueError(f"values must be the (n,) = ({len(X)},) real targets; got {None if v is None else v.shape}")
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(X))):
        raise ValueError("values and data.X must be finite (drop or impute NaN/inf first)")
    for name, val in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
            raise ValueError(f"{name} must be an int >= 1; got {val!r}")
    mu, sd = float(v.mean()), float(v.std()) or 1.0
    apply = ModuleApply(MLP(widths=tuple(int(w) for w in widths), n_classes=1, activation=activation))
    k_init, k_train = jax.random.split(jax.random.key(int(seed)))
    variables = apply.init(k_init, X.shape[1])
    opt = _TX.init(variables)
    opt = opt._replace(hyperparams=dict(opt.hyperparams, learning_rate=jnp.float32(learning_rate)))
    state = TrainState(step=jnp.zeros((), jnp.int32), params=variables, opt_state=opt)
    Xj, zj = jnp.asarray(X), jnp.asarray((v - mu) / sd, jnp.float32)
    for epoch in range(int(epochs)):
        state, metrics = _epoch(apply, min(int(batch_size), len(X)), state, Xj, zj, k_train, epoch)
    if not np.isfinite(float(metrics["loss"])):
        raise FloatingPointError("fit_regressor: the training loss became non-finite; lower learning_rate")
    params = {"model": state.params, "y_mean": jnp.float32(mu), "y_scale": jnp.float32(sd)}
    return Regressor(RegressionApply(apply.module), params, n_features=X.shape[1], scale=sd)


def fit_interval_target(
    dataset,
    *,
    interval,
    values=None,
    init_only: bool = False,
    widths=(64, 64),
    activation: str = "relu",
    epochs: int = 100,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
    **ignored,
) -> Classifier:
    """``cfx.models.fit(dataset, "regressor", interval=(lo, hi), values=None)``: :func:`fit_regressor`
    on ``values`` (default: the data set's real label column, :func:`cfx.data.values.label_values`),
    served as ``regressor.within(lo, hi)``. ``dataset.y`` must be the membership labels
    1[lo ≤ v ≤ hi] (California housing's own label is exactly ``interval=(179700, None)``, the
    median), so metrics that read target-class rows see the interval. ``init_only``: the
    untrained model (``cfx.models.init``), for restoring saved parameters."""
    if not (isinstance(interval, (tuple, list)) and len(interval) == 2):
        raise ValueError(
            f"interval must be a pair (lo, hi) (None for an open side) for model='regressor'; got {interval!r}"
        )
    lo, hi = interval
    X = np.asarray(dataset.X, np.float32)
    if values is None:
        from cfx.data.values import label_values  # lazy: models do not otherwise read data files

        values = label_values(dataset)
    v = np.asarray(as_real("values", values), np.float64)
    if v.shape != (len(X),):
        raise ValueError(f"values must have shape ({len(X)},); got {v.shape}")
    labels = interval_labels(v, lo, hi)
    differ = int(np.sum(labels != np.asarray(dataset.y)))
    if differ:
        raise ValueError(
            f"interval={tuple(interval)!r}: dataset.y is not the membership 1[lo <= value <= hi] on "
            f"{differ} of {len(X)} rows; relabel the data with cfx.models.interval_labels(values, lo, hi)"
        )
    if init_only:
        module = MLP(widths=tuple(int(w) for w in widths), n_classes=1, activation=activation)
        variables = ModuleApply(module).init(jax.random.split(jax.random.key(int(seed)))[0], X.shape[1])
        params = {"model": variables, "y_mean": jnp.float32(v.mean()), "y_scale": jnp.float32(v.std() or 1.0)}
        reg = Regressor(RegressionApply(module), params, X.shape[1], scale=float(v.std() or 1.0))
    else:
        reg = fit_regressor(
            X,
            v,
            widths=widths,
            activation=activation,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
        )
    return reg.within(lo, hi)

"""Shift metrics of a recourse simulation (Altmeyer et al., SaTML 2023; SPEC §6), jitted: the
registered metrics of :mod:`cfx.evaluation.shift`, computed together in one compiled call.

Every metric compares the initial state (data X₀, y₀; model M₀ with parameters θ₀) with the
current one (X_t, y_t; M_t, θ_t):

- ``mmd_domain`` (+ ``p_domain``): MMD²_u between the target-class points of X₀ and X_t
  (at most ``max_samples`` each side), permutation p-value;
- ``mmd_model`` (+ ``p_model``): PP-MMD, the MMD²_u between the predicted probabilities
  p(·|x) of M₀ and M_t on the initial training data X₀;
- ``mmd_model_grid`` (+ ``p_model_grid``): the same on points drawn from a grid over the
  feature ranges of X₀ (:func:`feature_grid`);
- ``param_change``: code variant, mean over parameter tensors of ‖θ_t − θ₀‖₂;
  ``param_change_paper``: ‖θ_t − θ_{t−1}‖², the squared change in the last round;
- ``disagreement``: share of x ∈ X₀ with argmax M₀(x) ≠ argmax M_t(x);
- ``decisiveness`` (paper): mean over X₀ of (p_t(y⁺|x) − 0.5)²;
  ``decisiveness_code`` (AlgorithmicRecourseDynamics.jl): | ‖P₀ − 0.5‖_F − ‖P_t − 0.5‖_F |,
  P the (n, C) matrix of predicted probabilities on X₀;
- ``accuracy``, ``f1`` (positive class y⁺) on the untouched test split, and their changes
  ``accuracy_change``, ``f1_change`` from the initial model.

:class:`MetricOptions` selects variants; its defaults are cfx's (above), ``MetricOptions.ard()``
AlgorithmicRecourseDynamics.jl 0.1.2's (the ``ard-2023`` preset).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from cfx.dynamics.mmd import _masked_test
from cfx.evaluation.population import accuracy_of
from cfx.evaluation.shift import (
    change,
    decisiveness,
    decisiveness_code,
    disagreement,
    f1_score,
    macro_f1,
    parameter_change,
    per_element_change,
)

__all__ = ["feature_grid", "evaluate_state", "f1_score", "parameter_change", "P_VALUES", "METRICS", "MetricOptions"]


@dataclasses.dataclass(frozen=True)
class MetricOptions:
    """Metric variants (each a static choice; the defaults are cfx's).

    Attributes:
      reference: ``"train"`` (X₀ = the initial training data) or ``"all"`` (train ∪ test at
        t = 0): the data of the domain MMD's initial side and of the model metrics (PP-MMD,
        disagreement, decisiveness) and the grid's ranges.
      domain_size: ``"each"`` (each side of the domain MMD subsampled to ``max_samples``) or
        ``"common"`` (both to n = min(|X₀ target rows|, max_samples)).
      probabilities: ``"softmax"`` (PP-MMD on the C-dim probability vectors) or ``"target"``
        (on the 1-D p(y⁺|x), a binary model's σ(logit)); also decisiveness_code's P.
      grid: ``"fixed"`` (one grid per run) or ``"redrawn"`` (a new grid at every evaluation).
      f1: ``"positive"`` (F1 of y⁺) or ``"macro"`` (mean over classes).
      perturbation: ``"norm"`` (mean over tensors of ‖Δθ‖₂) or ``"per_element"`` (mean over
        tensors, an ensemble's members' tensors each, of ‖Δθ‖₂ / numel).
    """

    reference: str = "train"
    domain_size: str = "each"
    probabilities: str = "softmax"
    grid: str = "fixed"
    f1: str = "positive"
    perturbation: str = "norm"

    _CHOICES = {
        "reference": ("train", "all"),
        "domain_size": ("each", "common"),
        "probabilities": ("softmax", "target"),
        "grid": ("fixed", "redrawn"),
        "f1": ("positive", "macro"),
        "perturbation": ("norm", "per_element"),
    }

    def __post_init__(self):
        for field, allowed in self._CHOICES.items():
            if getattr(self, field) not in allowed:
                raise ValueError(f"metrics.{field} must be one of {allowed}; got {getattr(self, field)!r}")

    @classmethod
    def ard(cls) -> "MetricOptions":
        """AlgorithmicRecourseDynamics.jl 0.1.2 (``evaluate_system``)."""
        return cls(
            reference="all",
            domain_size="common",
            probabilities="target",
            grid="redrawn",
            f1="macro",
            perturbation="per_element",
        )


#: metric -> its permutation p-value column
P_VALUES = {"mmd_domain": "p_domain", "mmd_model": "p_model", "mmd_model_grid": "p_model_grid"}
METRICS = (
    "mmd_domain",
    "mmd_model",
    "mmd_model_grid",
    "param_change",
    "param_change_paper",
    "disagreement",
    "decisiveness",
    "decisiveness_code",
    "accuracy",
    "f1",
    "accuracy_change",
    "f1_change",
)


def feature_grid(X: np.ndarray, n_samples: int = 1000, *, resolution: int = 100, seed: int = 0) -> np.ndarray:
    """``n_samples`` points whose every coordinate is drawn uniformly from ``resolution``
    evenly spaced values over that feature's range in X (as AlgorithmicRecourseDynamics.jl's
    grid search; in 2-D a random subset of a 100 × 100 grid)."""
    X = np.asarray(X, np.float32)
    lo, hi = X.min(0), X.max(0)
    steps = np.random.default_rng(seed).integers(0, resolution, size=(int(n_samples), X.shape[1]))
    return (lo + (hi - lo) * steps / max(resolution - 1, 1)).astype(np.float32)


@functools.partial(jax.jit, static_argnames=("n_permutations", "max_samples", "options"))
def _evaluate(
    clf0,
    clf,
    params_prev,
    X0,
    y0,
    X,
    y,
    grid,
    X_test,
    y_test,
    target,
    key,
    length_scale,
    *,
    n_permutations: int,
    max_samples: int | None,
    options: MetricOptions,
):
    k_dom, k_mod, k_grid, k_draw = jax.random.split(key, 4)
    out = {}
    X_ref, y_ref = (
        (X0, y0) if options.reference == "train" else (jnp.concatenate([X0, X_test]), jnp.concatenate([y0, y_test]))
    )
    out["mmd_domain"], out["p_domain"] = _masked_test(
        X_ref,
        y_ref == target,
        X,
        y == target,
        k_dom,
        length_scale,
        n_permutations=n_permutations,
        max_samples=max_samples,
        common_size=options.domain_size == "common",
    )

    def probs(c, data):
        p = jax.nn.softmax(c.raw_logits(data), -1)
        return p if options.probabilities == "softmax" else p[:, target][:, None]

    P0, P = probs(clf0, X_ref), probs(clf, X_ref)
    ones = jnp.ones(X_ref.shape[0], bool)
    out["mmd_model"], out["p_model"] = _masked_test(
        P0, ones, P, ones, k_mod, length_scale, n_permutations=n_permutations, max_samples=max_samples
    )
    if options.grid == "redrawn":  # AlgorithmicRecourseDynamics.jl draws a new grid at every evaluation
        lo, hi = X_ref.min(0), X_ref.max(0)
        grid = lo + (hi - lo) * jax.random.randint(k_draw, grid.shape, 0, 100) / 99.0
    G0, G = probs(clf0, grid), probs(clf, grid)
    ones = jnp.ones(grid.shape[0], bool)
    out["mmd_model_grid"], out["p_model_grid"] = _masked_test(
        G0, ones, G, ones, k_grid, length_scale, n_permutations=n_permutations, max_samples=max_samples
    )
    out["param_change"], out["param_change_paper"] = parameter_change(clf0.params, clf.params, params_prev)
    if options.perturbation == "per_element":
        out["param_change"] = per_element_change(
            clf0.params, clf.params, bool(getattr(clf.apply_fn, "stacked_members", False))
        )
    L0, L = jnp.argmax(clf0.raw_logits(X_ref), -1), jnp.argmax(clf.raw_logits(X_ref), -1)
    out["disagreement"] = disagreement(L0, L)
    p_target = jax.nn.softmax(clf.raw_logits(X_ref), -1)[:, target]
    out["decisiveness"] = decisiveness(p_target)
    out["decisiveness_code"] = decisiveness_code(P0, P)
    pred0, pred = jnp.argmax(clf0.raw_logits(X_test), -1), jnp.argmax(clf.raw_logits(X_test), -1)
    out["accuracy"] = accuracy_of(pred, y_test)
    if options.f1 == "macro":
        out["f1"] = macro_f1(y_test, pred, clf.n_classes)
        f1_0 = macro_f1(y_test, pred0, clf.n_classes)
    else:
        out["f1"], f1_0 = f1_score(y_test, pred, target), f1_score(y_test, pred0, target)
    out["accuracy_change"] = change(accuracy_of(pred0, y_test), out["accuracy"])
    out["f1_change"] = change(f1_0, out["f1"])
    return out


def evaluate_state(
    clf0,
    clf,
    params_prev,
    X0,
    y0,
    X,
    y,
    grid,
    X_test,
    y_test,
    *,
    target: int,
    key: jax.Array,
    n_permutations: int = 1000,
    length_scale: float = 0.5,
    max_samples: int | None = 1000,
    options: MetricOptions | None = None,
) -> dict:
    """Every metric of the module docstring as a dict of floats (one compiled call).

    Args:
      clf0, clf: the initial and the current :class:`cfx.Classifier`.
      params_prev: the current model's parameters one round earlier.
      X0, y0: initial training data; X, y: current training data (same shapes).
      grid: (G, d) points over the feature ranges (:func:`feature_grid`).
      X_test, y_test: the untouched test split.
      target: the favourable class y⁺; key: PRNG key of the subsampling and permutations.
      options: :class:`MetricOptions` (default: cfx's variants).
    """
    out = _evaluate(
        clf0,
        clf,
        params_prev,
        jnp.asarray(X0),
        jnp.asarray(y0),
        jnp.asarray(X),
        jnp.asarray(y),
        jnp.asarray(grid),
        jnp.asarray(X_test),
        jnp.asarray(y_test),
        jnp.int32(target),
        key,
        jnp.float32(length_scale),
        n_permutations=int(n_permutations),
        max_samples=None if max_samples is None else int(max_samples),
        options=MetricOptions() if options is None else options,
    )
    return {k: float(v) for k, v in jax.device_get(out).items()}

"""Shift metrics of the recourse dynamics (Altmeyer et al., SaTML 2023; SPEC §6), registered at
level ``"population"``: each compares the initial state (data X₀, y₀; model M₀ with
parameters θ₀) with the current one (X_t, y_t; M_t, θ_t). The recourse simulation computes them
all in one compiled call (:func:`cfx.dynamics.evaluate_state`); the pieces here are traceable.

- ``mmd_domain`` (+ ``p_domain``): MMD²_u between the target-class points of X₀ and X_t,
  permutation p-value (:func:`cfx.evaluation.mmd.masked_mmd_test`);
- ``mmd_model`` (+ ``p_model``): PP-MMD, the MMD²_u between the predicted probabilities of M₀ and
  M_t on X₀; ``mmd_model_grid`` (+ ``p_model_grid``): the same on points of a grid over X₀;
- ``param_change``: mean over parameter tensors of ‖θ_t − θ₀‖₂ (:func:`parameter_change`);
  ``param_change_paper``: ‖θ_t − θ_{t−1}‖²;
- ``disagreement``: share of x ∈ X₀ with argmax M₀(x) ≠ argmax M_t(x) (:func:`disagreement`);
- ``decisiveness``: mean over X₀ of (p_t(y⁺|x) − 0.5)² (:func:`decisiveness`);
  ``decisiveness_code``: | ‖P₀ − 0.5‖_F − ‖P_t − 0.5‖_F | (:func:`decisiveness_code`);
- ``f1`` (:func:`f1_score`, :func:`macro_f1`) on the test split, and the changes
  ``accuracy_change``, ``f1_change`` from the initial model.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cfx.evaluation.mmd import masked_mmd_test
from cfx.evaluation.registry import Metric, register

__all__ = [
    "f1_score",
    "macro_f1",
    "parameter_change",
    "per_element_change",
    "disagreement",
    "decisiveness",
    "decisiveness_code",
    "change",
]


def f1_score(y_true: jax.Array, y_pred: jax.Array, positive) -> jax.Array:
    """F1 = 2·TP / (2·TP + FP + FN) for class ``positive`` (0 when there is no positive at all)."""
    tp = jnp.sum((y_pred == positive) & (y_true == positive))
    fp = jnp.sum((y_pred == positive) & (y_true != positive))
    fn = jnp.sum((y_pred != positive) & (y_true == positive))
    denom = 2 * tp + fp + fn
    return jnp.where(denom > 0, 2 * tp / jnp.maximum(denom, 1), 0.0)


def macro_f1(y_true: jax.Array, y_pred: jax.Array, n_classes: int) -> jax.Array:
    """Mean over classes of the one-vs-rest F1 (MLJ's MulticlassFScore, macro average)."""
    return jnp.mean(jnp.stack([f1_score(y_true, y_pred, c) for c in range(n_classes)]))


def parameter_change(params0, params, params_prev) -> tuple[jax.Array, jax.Array]:
    """(mean over tensors of ‖θ_t − θ₀‖₂, Σ ‖θ_t − θ_{t−1}‖²)."""
    norms = [
        jnp.linalg.norm((a - b).ravel())
        for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(params0))
    ]
    step = sum(
        jnp.sum((a - b) ** 2) for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(params_prev))
    )
    return jnp.mean(jnp.stack(norms)), step


def per_element_change(params0, params, stacked: bool) -> jax.Array:
    """Mean over tensors of ‖Δθ‖₂ / numel; ``stacked``: each leaf's axis 0 holds members, whose
    tensors count one by one (Flux.params of a deep ensemble)."""
    vals = []
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(params0)):
        diff = (a - b).reshape(a.shape[0], -1) if stacked else (a - b).reshape(1, -1)
        vals.append(jnp.linalg.norm(diff, axis=-1) / diff.shape[-1])
    return jnp.mean(jnp.concatenate(vals))


def disagreement(labels0: jax.Array, labels: jax.Array) -> jax.Array:
    """Share of points whose predicted label changed: mean(ŷ₀ ≠ ŷ_t)."""
    return jnp.mean(labels0 != labels)


def decisiveness(p_target: jax.Array) -> jax.Array:
    """mean((p_t(y⁺|x) − 0.5)²) (the paper's)."""
    return jnp.mean((p_target - 0.5) ** 2)


def decisiveness_code(P0: jax.Array, P: jax.Array) -> jax.Array:
    """| ‖P₀ − 0.5‖_F − ‖P_t − 0.5‖_F | of the predicted probabilities (AlgorithmicRecourseDynamics.jl's)."""
    return jnp.abs(jnp.linalg.norm(P0 - 0.5) - jnp.linalg.norm(P - 0.5))


def change(initial: jax.Array, current: jax.Array) -> jax.Array:
    """A ``*_change`` metric: its base metric of the current model minus that of the initial one."""
    return current - initial


#: the registered metrics, by the function that computes them
_DESCRIBED = {
    masked_mmd_test: {
        "mmd_domain": "dynamics: MMD² between the target-class points of the initial and the current data",
        "p_domain": "dynamics: permutation p-value of mmd_domain",
        "mmd_model": "dynamics: PP-MMD, MMD² between the initial and the current model's predicted probabilities "
        "on the initial data",
        "p_model": "dynamics: permutation p-value of mmd_model",
        "mmd_model_grid": "dynamics: PP-MMD on points of a grid over the initial data's ranges",
        "p_model_grid": "dynamics: permutation p-value of mmd_model_grid",
    },
    parameter_change: {
        "param_change": "dynamics: mean over parameter tensors of ||theta_t - theta_0||_2 (ard-2023: per element)",
        "param_change_paper": "dynamics: ||theta_t - theta_{t-1}||^2, the squared change in the last round",
    },
    disagreement: {"disagreement": "dynamics: share of initial points whose predicted label changed"},
    decisiveness: {"decisiveness": "dynamics: mean over the initial data of (p_t(y+|x) - 0.5)^2"},
    decisiveness_code: {"decisiveness_code": "dynamics: | ||P_0 - 0.5||_F - ||P_t - 0.5||_F | (the reference code's)"},
    f1_score: {"f1": "F1 of the favourable class on the test split (ard-2023: macro over classes)"},
    change: {
        "accuracy_change": "dynamics: accuracy of the current minus the initial model",
        "f1_change": "dynamics: f1 of the current minus the initial model",
    },
}
for _fn, _described in _DESCRIBED.items():
    for _name, _description in _described.items():
        register(Metric(_name, _fn, level="population", description=_description))

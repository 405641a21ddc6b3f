"""Metrics judged by the classifier: validity, label validity, p(y⁺|x'), CARLA redundancy.

Recomputed from ``ctx.classifier`` (never read from ``result.target_probs``), so a result can
be re-evaluated under a new model. With logits f and ŷ(v) = argmax f(v):

- targeted (y⁺ >= 0): ``validity`` = [p(y⁺|x') >= τ] (τ = ``result.threshold``),
  ``label_validity`` = [ŷ(x') = y⁺], ``target_prob`` = p(y⁺|x');
- untargeted (target -1), as the search judges it: ``target_prob`` = max_{y ≠ ŷ(x)} p(y|x'),
  ``label_validity`` = [ŷ(x') ≠ ŷ(x)], ``validity`` = label validity and ``target_prob`` >= τ
  (for two classes and τ = 0.5 the same as label validity);
- ``redundancy_carla``: for each changed feature j (|Δ_j| > 1e-5), set x'_j back to x_j alone
  and count the reversions that stay label-valid. CARLA evaluates only label-valid
  counterfactuals (it drops the others), so it is NaN for label-invalid ones.

The counterfactual, the factual and the d reversions go through the model as one
(d + 2, d) batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cfx.evaluation.conventions import CHANGE_TOL
from cfx.evaluation.registry import register_family


def success(labels: jax.Array, target, factual_label) -> jax.Array:
    """Label validity of predicted labels: == target, or ≠ the factual's label when untargeted."""
    return jnp.where(target >= 0, labels == target, labels != factual_label)


def judge(logits_cf: jax.Array, factual_label, target, threshold):
    """(target_prob, validity, label_validity) of one counterfactual's logits (C,)."""
    probs = jax.nn.softmax(logits_cf)
    p_other = jnp.max(jnp.where(jnp.arange(probs.shape[-1]) == factual_label, 0.0, probs))
    p_t = jnp.where(target >= 0, probs[jnp.maximum(target, 0)], p_other)
    label_valid = success(jnp.argmax(logits_cf), target, factual_label)
    return p_t, (p_t >= threshold) & jnp.where(target >= 0, True, label_valid), label_valid


def effective_target(cf: jax.Array, target, ctx) -> jax.Array:
    """The class a counterfactual is judged against: its target, or (untargeted) the class
    the model predicts at x'."""
    return jnp.where(target >= 0, target, jnp.argmax(ctx.classifier.raw_logits(cf[None])[0]))


def prediction(cf: jax.Array, x: jax.Array, target, ctx) -> dict[str, jax.Array]:
    """Validity, label validity, target probability and CARLA redundancy of one counterfactual."""
    d = cf.shape[-1]
    reverted = jnp.where(jnp.eye(d, dtype=bool), x[None, :], cf[None, :])  # row j: x'_j := x_j
    logits = ctx.classifier.raw_logits(jnp.concatenate([cf[None], x[None], reverted]))
    labels = jnp.argmax(logits, axis=-1)
    y_x = labels[1]
    p_t, valid, label_valid = judge(logits[0], y_x, target, ctx.threshold)
    kept = success(labels[2:], target, y_x)
    n_redundant = jnp.sum((jnp.abs(cf - x) > CHANGE_TOL) & kept).astype(jnp.float32)
    return {
        "validity": valid,
        "label_validity": label_valid,
        "target_prob": p_t,
        "redundancy_carla": jnp.where(label_valid, n_redundant, jnp.nan),
    }


register_family(
    prediction,
    {
        "validity": "p(target | x') >= threshold (tau = result.threshold), recomputed from the classifier "
        "(untargeted: also the label left the factual's class)",
        "label_validity": "argmax of the classifier's logits at x' equals the target "
        "(untargeted: differs from the factual's predicted label)",
        "target_prob": "p(target | x') under the classifier (untargeted: the largest p of a class other than "
        "the factual's predicted one)",
        "redundancy_carla": "CARLA: changed features whose lone reversion keeps the counterfactual label-valid "
        "(NaN when x' is not label-valid)",
    },
    group="prediction",
    needs=("classifier",),
    # one unit: a (d + 2, d) model batch
    cost=lambda ctx, shape: ((shape[-1] + 2) * shape[-1], shape[-1] + 2),
    headline=("validity", "redundancy_carla"),
)

"""Metrics of the model's own view of the data (SPEC §2, §4); each needs a context slot that
stays None until a sampler or a conformal calibration fills it, and is skipped until then.

For a counterfactual x' judged against class t (its target; untargeted: ŷ(x')):

- ``unfaithfulness`` (ECCCo) = (1/k) Σ_i ‖x' − S_{t,i}‖₂ over the k samples S_t of the model's
  conditional p_θ(x | t) in ``ctx.conditional_samples`` (C, k, d). This is the plain mean;
  the ECCCo reference divides the sum by the SGLD chain count (50 chains, 25 kept samples:
  half of this).
- ``set_size`` (smooth conformal set size, Stutz et al. 2022) with conformity score
  s(x', y) = 1 − p(y|x'), soft membership C_y = σ((q̂ − s(x', y)) / T), T = 0.1:
  Ω = max(0, Σ_y C_y − κ), κ = 1; 0 when x' is not valid (validity as in
  :mod:`cfx.evaluation.prediction`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cfx.evaluation.prediction import effective_target, judge
from cfx.evaluation.registry import Metric, register

#: Temperature and target size of the smooth set size (SPEC §2).
SET_SIZE_TEMPERATURE = 0.1
SET_SIZE_KAPPA = 1.0


def unfaithfulness(cf: jax.Array, x: jax.Array, target, ctx) -> jax.Array:
    """Mean L2 distance from x' to the conditional samples of its class."""
    samples = ctx.conditional_samples[effective_target(cf, target, ctx)]  # (k, d)
    return jnp.mean(jnp.linalg.norm(samples - cf, axis=-1))


def set_size(cf: jax.Array, x: jax.Array, target, ctx) -> jax.Array:
    """Smooth conformal set size Ω of x' (0 when x' is not valid)."""
    logits = ctx.classifier.raw_logits(jnp.stack([cf, x]))
    probs = jax.nn.softmax(logits[0])
    membership = jax.nn.sigmoid((ctx.q_hat - (1.0 - probs)) / SET_SIZE_TEMPERATURE)
    omega = jnp.maximum(0.0, jnp.sum(membership) - SET_SIZE_KAPPA)
    _, valid, _ = judge(logits[0], jnp.argmax(logits[1]), target, ctx.threshold)
    return jnp.where(valid, omega, 0.0)


register(
    Metric(
        "unfaithfulness",
        unfaithfulness,
        needs=("conditional_samples", "classifier"),
        headline=True,
        cost=lambda ctx, shape: (int(ctx.conditional_samples.shape[1]) * shape[-1], 1),
        description="ECCCo: mean L2 distance from x' to the model's conditional samples of the target class; "
        "needs conditional_samples",
    )
)

register(
    Metric(
        "set_size",
        set_size,
        needs=("classifier", "q_hat"),
        headline=True,
        cost=lambda ctx, shape: (2 * shape[-1], 2),
        description="smooth conformal set size max(0, sum_y sigmoid((q_hat - 1 + p(y|x')) / 0.1) - 1), "
        "0 when invalid; needs q_hat",
    )
)

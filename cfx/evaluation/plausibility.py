"""Plausibility against reference data, from one kNN pass (SPEC §4).

For a counterfactual x' judged against class t (its target; untargeted: ŷ(x')):

- ``implausibility`` (ECCCo) = (1/k) Σ_{i ∈ kNN_t(x')} ‖x' − X_i‖₂ over the k = ``n_neighbors``
  nearest points with *true* label y_i = t (all of them when the class has fewer; NaN with none);
- ``ynn`` (CARLA) = (1/k') Σ_{i ∈ kNN(x')} [ŷ(X_i) = t] over the k' = ``ynn_neighbors`` nearest
  points of any class, labelled by the *model's* predictions; its mean over counterfactuals
  is CARLA's yNN = 1 − mean share of disagreeing neighbours.

Neighbours come from squared distances ‖q‖² + ‖X_i‖² − 2 q·X_i (a matvec per query, a
matmul per chunk) and ``lax.top_k``; the reported implausibility then uses the exact
‖q − X_i‖ of the selected points.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cfx.evaluation.prediction import effective_target
from cfx.evaluation.registry import register_family


def neighbours(cf: jax.Array, x: jax.Array, target, ctx) -> dict[str, jax.Array]:
    """Implausibility and yNN share of one counterfactual against ``ctx.X`` (N, d)."""
    X, q = ctx.X, cf
    t = effective_target(cf, target, ctx)
    d2 = jnp.maximum(jnp.sum(X * X, axis=-1) + jnp.dot(q, q) - 2.0 * (X @ q), 0.0)
    # implausibility: k nearest points of class t (true labels); others masked with -inf
    neg_d2, idx = jax.lax.top_k(jnp.where(ctx.y == t, -d2, -jnp.inf), ctx.n_neighbors)
    found = neg_d2 > -jnp.inf
    dist = jnp.linalg.norm(X[idx] - q, axis=-1)
    n_found = jnp.sum(found)
    implaus = jnp.where(n_found > 0, jnp.sum(jnp.where(found, dist, 0.0)) / jnp.maximum(n_found, 1), jnp.nan)
    # yNN: k' nearest points of any class, labelled by the model
    _, idx_nn = jax.lax.top_k(-d2, ctx.ynn_neighbors)
    return {"implausibility": implaus, "ynn": jnp.mean(ctx.predictions[idx_nn] == t)}


def _cost(ctx, shape):
    # per query: a row of N distances and the k gathered neighbours (k x d)
    d = shape[-1]
    return max(ctx.n_data, (ctx.n_neighbors + ctx.ynn_neighbors) * d), 1


register_family(
    neighbours,
    {
        "implausibility": "ECCCo: mean L2 distance from x' to its n_neighbors nearest target-class points "
        "(true labels) in data; needs data",
        "ynn": "CARLA yNN: share of the 5 nearest data points whose predicted label == target; "
        "its mean is yNN; needs data",
    },
    group="neighbours",
    needs=("data", "classifier"),
    cost=_cost,
    headline=("implausibility", "ynn"),
)

"""Distance and sparsity metrics (SPEC §4: cost / distance, CE.jl redundancy).

With Δ = x' − x and "changed" meaning |Δ_j| > 1e-5 (CARLA's L0 tolerance) everywhere:

- ``l0`` = #{j : |Δ_j| > 1e-5};  ``l1`` = Σ_j |Δ_j|;  ``l2`` = ‖Δ‖₂ (the *true* Euclidean
  norm; CARLA's "L2_distance" is its square);  ``linf`` = max_j |Δ_j|;
- ``redundancy`` (CE.jl) = share of features with |Δ_j| < 1e-5;
- ``mad_l1`` (Wachter et al.) = Σ_j |Δ_j| / MAD_j, MAD from the context's data;
- ``diversity`` (per set of K) = Σ_{i≠k} ‖x'_i − x'_k‖₁ / (K(K−1)), the mean pairwise L1 of a
  factual's counterfactuals (0 for K = 1: one counterfactual has no spread).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cfx.evaluation.conventions import CHANGE_TOL
from cfx.evaluation.registry import Metric, register, register_family


def distances(cf: jax.Array, x: jax.Array, target, ctx) -> dict[str, jax.Array]:
    """L0, L1, true L2, L∞ and CE.jl redundancy of one counterfactual, from one Δ."""
    delta = cf - x
    absd = jnp.abs(delta)
    changed = absd > CHANGE_TOL
    return {
        "l0": jnp.sum(changed),
        "l1": jnp.sum(absd),
        "l2": jnp.sqrt(jnp.sum(delta * delta)),
        "linf": jnp.max(absd),
        "redundancy": jnp.mean(~changed),
    }


def mad_l1(cf: jax.Array, x: jax.Array, target, ctx) -> jax.Array:
    """Wachter et al.'s MAD-weighted L1: Σ_j |x'_j − x_j| / MAD_j."""
    return jnp.sum(jnp.abs(cf - x) / ctx.mad)


def diversity(cfs: jax.Array, x: jax.Array, target, ctx) -> jax.Array:
    """Mean pairwise L1 among the K counterfactuals (K, d) of one factual."""
    K = cfs.shape[0]
    if K == 1:
        return jnp.zeros((), cfs.dtype)
    pairwise = jnp.sum(jnp.abs(cfs[:, None, :] - cfs[None, :, :]), axis=-1)  # (K, K), zero diagonal
    return jnp.sum(pairwise) / (K * (K - 1))


register_family(
    distances,
    {
        "l0": "number of features with |x'_j - x_j| > 1e-5",
        "l1": "sum_j |x'_j - x_j|",
        "l2": "||x' - x||_2, the true Euclidean norm (CARLA's 'L2' is its square)",
        "linf": "max_j |x'_j - x_j|",
        "redundancy": "CE.jl: fraction of features left unchanged (|x'_j - x_j| < 1e-5)",
    },
    group="distances",
    cost=lambda ctx, shape: (shape[-1], 0),
    headline=("l1", "l2", "redundancy"),
)

register(
    Metric(
        "mad_l1",
        mad_l1,
        needs=("data",),
        cost=lambda ctx, shape: (shape[-1], 0),
        headline=True,
        description="sum_j |x'_j - x_j| / MAD_j, MAD from data.X (MAD 0 -> 1); needs data",
    )
)

register(
    Metric(
        "diversity",
        diversity,
        level="set",
        cost=lambda ctx, shape: (shape[0] * shape[0] * shape[-1], 0),
        description="mean pairwise L1 among a factual's K counterfactuals, sum_{i!=k} ||x'_i - x'_k||_1 / (K(K-1)); 0 for K = 1",
    )
)

"""Maximum mean discrepancy (MMD) with a Gaussian kernel and its permutation test: the one
kernel and the one MMD² of cfx (the recourse dynamics' shift metrics and counterfactual
training's IP* both use them).

Kernel (AlgorithmicRecourseDynamics.jl: KernelFunctions' SqExponentialKernel with
length-scale ℓ = 0.5):  k(x, y) = exp(−‖x − y‖² / (2ℓ²)).

Unbiased MMD² between samples X (m rows) and Y (n rows):

    MMD²_u = 1/(m(m−1)) Σ_{i≠j} k(x_i, x_j) + 1/(n(n−1)) Σ_{i≠j} k(y_i, y_j) − 2/(mn) Σ_{i,j} k(x_i, y_j)

p-value (permutation test): pool Z = X ∪ Y, draw P random splits into groups of sizes m
and n, p = share of permuted MMD²_u ≥ the observed one. The kernel matrix of Z is built
once; every permutation is a pair of 0/1 group vectors a, b and
MMD² = (aᵀKa − Σ a_i K_ii)/(m(m−1)) + (bᵀKb − Σ b_i K_ii)/(n(n−1)) − 2 aᵀKb/(mn),
so all P permutations are one batched matrix product (vmapped over permutations; b's
product is the valid rows' product minus a's).

Weighted sets (:func:`mmd2`): with weights w (0/1 masks or bootstrap counts) the within-set
term is Σ_{i≠j} w_i w_j k_ij / ((Σw)² − Σw²) and the cross term Σ w_i v_j k_ij / (Σw Σv): the
same formula, which for 0/1 weights is the one above.

Masks make shapes static: a set is a padded (N, d) array with a boolean mask, so the
changing number of target-class points in a recourse simulation never recompiles.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from cfx._validate import as_real, prng_key

__all__ = ["gaussian_kernel", "mmd", "mmd2", "mmd_test", "masked_mmd_test", "DEFAULT_LENGTH_SCALE"]

DEFAULT_LENGTH_SCALE = 0.5


def gaussian_kernel(x: jax.Array, y: jax.Array, length_scale=DEFAULT_LENGTH_SCALE) -> jax.Array:
    """k(x_i, y_j) = exp(−‖x_i − y_j‖² / (2ℓ²)) for x (m, d), y (n, d) -> (m, n)."""
    sq = jnp.sum(x * x, -1)[:, None] + jnp.sum(y * y, -1)[None, :] - 2.0 * x @ y.T
    return jnp.exp(-jnp.maximum(sq, 0.0) / (2.0 * length_scale**2))


def _mmd_from_groups(K: jax.Array, a: jax.Array, b: jax.Array, Ka: jax.Array, Kb: jax.Array, empty=None) -> jax.Array:
    """Unbiased MMD² of the groups a, b (weights over the rows of the pooled kernel K: 0/1
    vectors, or bootstrap counts) given their products Ka = aK, Kb = bK. ``a``, ``b`` and the
    products may carry a leading batch axis (permutations).

    The pair count of a group with weights w is (Σw)² − Σw² = m(m − 1) + (m − Σw²): the second
    term is exactly 0 for 0/1 weights, so masks give the plain m(m − 1) bit for bit. A term
    without pairs is NaN (0/0), or ``empty`` when given."""
    diag = jnp.diagonal(K)
    m, n = jnp.sum(a, -1), jnp.sum(b, -1)
    aa, bb = a * a, b * b
    pairs_a = m * (m - 1) + (m - jnp.sum(aa, -1))
    pairs_b = n * (n - 1) + (n - jnp.sum(bb, -1))
    xx_sum, yy_sum, xy_sum = (
        jnp.sum(Ka * a, -1) - jnp.sum(aa * diag, -1),
        jnp.sum(Kb * b, -1) - jnp.sum(bb * diag, -1),
        jnp.sum(Ka * b, -1),
    )
    if empty is None:
        return xx_sum / pairs_a + yy_sum / pairs_b - 2.0 * (xy_sum / (m * n))
    guard = lambda num, den: jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), empty)
    return guard(xx_sum, pairs_a) + guard(yy_sum, pairs_b) - 2.0 * guard(xy_sum, m * n)


@jax.jit
def mmd2(a: jax.Array, b: jax.Array, wa: jax.Array, wb: jax.Array, length_scale) -> jax.Array:
    """Unbiased MMD² between weighted sets a (n, d) and b (m, d) (weights: 0/1 masks or
    bootstrap counts; pairs i = j excluded within a set), Gaussian kernel of ``length_scale``;
    a term without pairs counts 0. Traceable (vmapped over bootstrap draws and rounds)."""
    z = jnp.concatenate([a, b])
    K = gaussian_kernel(z, z, length_scale)
    ga = jnp.concatenate([wa, jnp.zeros_like(wb)])
    gb = jnp.concatenate([jnp.zeros_like(wa), wb])
    return _mmd_from_groups(K, ga, gb, ga @ K, gb @ K, empty=0.0)


def _permuted_groups(valid: jax.Array, m: jax.Array, keys: jax.Array) -> jax.Array:
    """(P, N) 0/1 groups: for each key a uniformly random m of the valid rows.

    Selection sampling (Knuth's Algorithm S), all P permutations at once: walking the rows
    in order, a valid row is taken with probability (m − taken) / (valid rows from here on),
    which draws every m-subset with the same probability and exactly m rows. One scan over
    the rows with a (P,) count as its state; an argsort per permutation instead (the ranks of
    P × N random keys) took 80 % of a 2000-point, 1000-permutation test."""
    u = jax.vmap(lambda k: jax.random.uniform(k, valid.shape), out_axes=1)(keys)  # (N, P): row k's draws
    remaining = jnp.sum(valid) - (jnp.cumsum(valid) - valid)  # valid rows from row k on, k included

    def select(taken, row):
        u_k, valid_k, remaining_k = row
        take = valid_k & (u_k * remaining_k < m - taken)
        return taken + take, take

    _, member = jax.lax.scan(select, jnp.zeros(keys.shape[0], jnp.int32), (u, valid, remaining))
    return member.T.astype(jnp.float32)


def _subsample(mask: jax.Array, key: jax.Array, k: int) -> jax.Array:
    """At most ``k`` of the rows in ``mask``, chosen uniformly at random (shape unchanged)."""
    return _permuted_groups(mask, jnp.minimum(k, jnp.sum(mask)), key[None])[0] > 0


@functools.partial(jax.jit, static_argnames=("n_permutations", "max_samples", "common_size"))
def _masked_test(
    x, x_mask, y, y_mask, key, length_scale, *, n_permutations: int, max_samples: int | None, common_size: bool = False
):
    """``common_size``: y is subsampled to at most n = min(|x|, max_samples) rows, the size of
    x's sample (AlgorithmicRecourseDynamics.jl's ``mmd(x, y, n)``), not to ``max_samples``."""
    k_x, k_y, k_perm = jax.random.split(key, 3)
    if max_samples is not None:
        y_cap = jnp.minimum(jnp.sum(x_mask), max_samples) if common_size else max_samples
        x_mask, y_mask = _subsample(x_mask, k_x, max_samples), _subsample(y_mask, k_y, y_cap)
    z = jnp.concatenate([x, y]).astype(jnp.float32)
    valid = jnp.concatenate([x_mask, y_mask])
    K = gaussian_kernel(z, z, length_scale)
    a = jnp.concatenate([x_mask, jnp.zeros_like(y_mask)]).astype(jnp.float32)
    b = jnp.concatenate([jnp.zeros_like(x_mask), y_mask]).astype(jnp.float32)
    Ka, Kb = a @ K, b @ K  # K is symmetric
    observed = _mmd_from_groups(K, a, b, Ka, Kb)
    if n_permutations == 0:
        return observed, jnp.float32(jnp.nan)
    m = jnp.sum(x_mask)
    keys = jax.random.split(k_perm, n_permutations)
    pa = _permuted_groups(valid, m, keys)
    pb = valid.astype(jnp.float32) - pa
    # The rest of each split is every valid row but the group: pb·K = (a + b)·K − pa·K, so the
    # P permutations cost one (P, N) x (N, N) product, not two.
    pKa = pa @ K
    null = _mmd_from_groups(K, pa, pb, pKa, (Ka + Kb) - pKa)
    return observed, jnp.mean(null >= observed)


def _as_samples(name: str, a, what: str) -> np.ndarray:
    try:
        return np.asarray(a, np.float32)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{what}: {name} must be an array of numbers (n, d); got {type(a).__name__}") from err


def _check_sets(x, y, what: str = "mmd") -> tuple[np.ndarray, np.ndarray]:
    x, y = _as_samples("x", x, what), _as_samples("y", y, what)
    for name, a in (("x", x), ("y", y)):
        if a.ndim != 2:
            raise ValueError(f"{what}: {name} must be a 2-D array (n, d) of samples; got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{what}: {name} contains NaN or inf values")
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{what}: x and y must have the same dimensionality; x has {x.shape[1]} features, "
            f"y has {y.shape[1]} (argument y)"
        )
    return x, y


def _check_options(length_scale, n_permutations, max_samples, what: str) -> None:
    if not (np.isfinite(as_real(f"{what}: length_scale", length_scale)) and length_scale > 0):
        raise ValueError(f"{what}: length_scale must be finite and > 0; got {length_scale!r}")
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) or n_permutations < 0:
        raise ValueError(f"{what}: n_permutations must be an int >= 0; got {n_permutations!r}")
    if max_samples is not None and (
        isinstance(max_samples, bool) or not isinstance(max_samples, (int, np.integer)) or max_samples < 2
    ):
        raise ValueError(f"{what}: max_samples must be an int >= 2 or None; got {max_samples!r}")


def _check_masked(x, x_mask, y, y_mask) -> None:
    """Shapes always (they are static under a trace); values only when concrete (not traced)."""
    for name, a, mask in (("x", x, x_mask), ("y", y, y_mask)):
        if np.ndim(a) != 2:
            raise ValueError(f"masked_mmd_test: {name} must be a 2-D array (n, d) of samples; got shape {np.shape(a)}")
        if np.shape(mask) != (np.shape(a)[0],):
            raise ValueError(
                f"masked_mmd_test: {name}_mask must have shape ({np.shape(a)[0]},) (one flag per row of "
                f"{name}); got {np.shape(mask)}"
            )
        if not isinstance(a, jax.core.Tracer) and not np.isfinite(_as_samples(name, a, "masked_mmd_test")).all():
            raise ValueError(f"masked_mmd_test: {name} contains NaN or inf values")
    if np.shape(x)[1] != np.shape(y)[1]:
        raise ValueError(
            f"masked_mmd_test: x and y must have the same dimensionality; x has {np.shape(x)[1]} "
            f"features, y has {np.shape(y)[1]} (argument y)"
        )


def masked_mmd_test(
    x,
    x_mask,
    y,
    y_mask,
    *,
    key: jax.Array,
    n_permutations: int = 1000,
    length_scale: float = DEFAULT_LENGTH_SCALE,
    max_samples: int | None = None,
):
    """(MMD²_u, p-value) between the rows of x selected by ``x_mask`` and those of y selected
    by ``y_mask`` (at most ``max_samples`` of each, drawn with ``key``). Traceable; shapes
    stay static when only the masks change. NaN when a side has fewer than 2 rows."""
    _check_options(length_scale, n_permutations, max_samples, "masked_mmd_test")
    _check_masked(x, x_mask, y, y_mask)
    key = prng_key(key)
    return _masked_test(
        jnp.asarray(x),
        jnp.asarray(x_mask, bool),
        jnp.asarray(y),
        jnp.asarray(y_mask, bool),
        key,
        jnp.float32(length_scale),
        n_permutations=int(n_permutations),
        max_samples=None if max_samples is None else int(max_samples),
    )


def mmd(x, y, *, length_scale: float = DEFAULT_LENGTH_SCALE) -> float:
    """Unbiased MMD² with a Gaussian kernel between samples x (m, d) and y (n, d); m, n >= 2.

    Example::

        cfx.evaluation.mmd.mmd(rng.normal(size=(500, 2)), rng.normal(size=(500, 2)))  # ≈ 0
    """
    value, _ = mmd_test(x, y, key=jax.random.key(0), n_permutations=0, length_scale=length_scale)
    return value


def mmd_test(
    x,
    y,
    *,
    key: jax.Array,
    n_permutations: int = 1000,
    length_scale: float = DEFAULT_LENGTH_SCALE,
    max_samples: int | None = None,
) -> tuple[float, float]:
    """(MMD²_u, permutation p-value) between x (m, d) and y (n, d): p = share of the
    ``n_permutations`` random re-splits of x ∪ y whose MMD²_u is ≥ the observed one
    (NaN when ``n_permutations`` = 0). ``max_samples``: at most this many rows each side
    (drawn with ``key``), as in the paper (1000 synthetic, 10,000 real)."""
    x, y = _check_sets(x, y, "mmd_test" if n_permutations else "mmd")
    for name, a in (("x", x), ("y", y)):
        if a.shape[0] < 2:
            raise ValueError(f"mmd: {name} needs at least 2 samples for the unbiased estimate; got {a.shape[0]}")
    value, p = masked_mmd_test(
        x,
        np.ones(len(x), bool),
        y,
        np.ones(len(y), bool),
        key=key,
        n_permutations=n_permutations,
        length_scale=length_scale,
        max_samples=max_samples,
    )
    return float(value), float(p)

"""Principal component analysis for latent-space search (ECCCo+, SPEC §2).

The fitted map is affine and orthonormal: with μ the training mean and W (m, d) the top m
right singular vectors of X − μ,

    encode(x) = (x − μ) Wᵀ        decode(z) = z W + μ

so decode(encode(x)) is the orthogonal projection of x onto the m-dimensional principal
subspace through μ (the identity when m = d).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def fit_pca(X, n_components: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(μ (d,), W (m, d)) of the rows of ``X`` (n, d); ``n_components`` m (None: min(n, d)).

    Signs are fixed (the largest |entry| of every component is positive) so the same data
    gives the same components on every platform.
    """
    X = np.asarray(X, np.float64)
    if X.ndim != 2 or X.shape[0] < 1:
        raise ValueError(f"data must have shape (n >= 1, d) to fit a PCA; got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("data holds non-finite values; cannot fit a PCA")
    n, d = X.shape
    m = min(n, d) if n_components is None else n_components
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 1 <= m <= min(n, d):
        raise ValueError(f"n_components must be an int in [1, {min(n, d)}] (min of rows and features); got {m!r}")
    mean = X.mean(axis=0)
    _, _, vt = np.linalg.svd(X - mean, full_matrices=False)
    W = vt[:m]
    flip = np.sign(W[np.arange(m), np.argmax(np.abs(W), axis=1)])
    W = W * np.where(flip == 0, 1.0, flip)[:, None]
    return mean.astype(np.float32), W.astype(np.float32)


def encode(x: jnp.ndarray, mean: jnp.ndarray, components: jnp.ndarray) -> jnp.ndarray:
    """z = (x − μ) Wᵀ over the last axis: (…, d) -> (…, m)."""
    return (x - mean) @ components.T


def decode(z: jnp.ndarray, mean: jnp.ndarray, components: jnp.ndarray) -> jnp.ndarray:
    """x = z W + μ over the last axis: (…, m) -> (…, d)."""
    return z @ components + mean

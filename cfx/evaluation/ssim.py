"""Structural similarity (Wang et al. 2004) and the image implausibility of ECCCo (SPEC §4).

For two single-channel images a, b of shape (h, w) and a normalised Gaussian window g
(``WINDOW_SIZE`` = 11 taps, σ = 1.5, clipped to the largest odd size that fits the image;
"valid" filtering, no padding), with local statistics μ = g∗a, σ² = g∗a² − μ² and
σ_ab = g∗(ab) − μ_a μ_b:

    SSIM(a, b) = mean over windows of  (2 μ_a μ_b + C1)(2 σ_ab + C2) / ((μ_a² + μ_b² + C1)(σ_a² + σ_b² + C2))

C1 = (0.01 L)², C2 = (0.03 L)², L the data range (2 for cfx's images in [−1, 1]). SSIM lies in
[−1, 1] and equals 1 exactly for identical images, so the dissimilarity (1 − SSIM)/2 lies in [0, 1].

The metric ``implausibility_ssim`` is ECCCo's implausibility for images: the mean
(1 − SSIM(x', X_i))/2 over the ``n_neighbors`` nearest target-class training images X_i
(neighbours chosen by L2, as for ``implausibility``; true labels). The image shape is the one
cfx's vision sets record (pixels ``px_r_c``, row-major, square: (√d, √d)); the value is NaN
for data that is not such an image set (d not a square >= 16, or a feature bound other than
the [−1, 1] pixel box).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from cfx.evaluation.prediction import effective_target
from cfx.evaluation.registry import Metric, register

WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1, K2 = 0.01, 0.03
#: cfx's image sets hold pixels in [−1, 1].
DATA_RANGE = 2.0


def square_shape(d: int) -> tuple[int, int] | None:
    """(√d, √d) when d is a perfect square of an image side >= 4, else None."""
    side = int(math.isqrt(int(d)))
    return (side, side) if side * side == d and side >= 4 else None


def _filter_matrix(n: int, size: int, sigma: float) -> np.ndarray:
    """(n − size + 1, n) matrix whose rows apply the normalised 1-D Gaussian in "valid" mode."""
    taps = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2.0) / sigma) ** 2)
    taps /= taps.sum()
    out = np.zeros((n - size + 1, n), np.float32)
    for i in range(n - size + 1):
        out[i, i : i + size] = taps
    return out


def window_size(shape: tuple[int, int], size: int = WINDOW_SIZE) -> int:
    """The window side: ``size`` clipped to the image, made odd."""
    k = min(size, int(shape[0]), int(shape[1]))
    return k if k % 2 == 1 else k - 1


def ssim(
    a: jax.Array, b: jax.Array, *, data_range: float = DATA_RANGE, size: int = WINDOW_SIZE, sigma: float = WINDOW_SIGMA
) -> jax.Array:
    """SSIM of images a (h, w) and b (…, h, w) (b may hold a batch) -> (…,)."""
    h, w = a.shape[-2:]
    k = window_size((h, w), size)
    fh, fw = jnp.asarray(_filter_matrix(h, k, sigma)), jnp.asarray(_filter_matrix(w, k, sigma))

    def blur(img):  # separable filter: Fh · img · Fwᵀ
        return jnp.einsum("ih,...hw,jw->...ij", fh, img, fw)

    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return jnp.mean(num / den, axis=(-2, -1))


def dissimilarity(a: jax.Array, b: jax.Array, **kw) -> jax.Array:
    """(1 − SSIM(a, b)) / 2 in [0, 1]; 0 for identical images."""
    return (1.0 - ssim(a, b, **kw)) / 2.0


def _is_pixel_box(ctx) -> jax.Array:
    c = ctx.constraints
    return jnp.all(c.lower == -1.0) & jnp.all(c.upper == 1.0)


def implausibility_ssim(cf: jax.Array, x: jax.Array, target, ctx) -> jax.Array:
    """Mean (1 − SSIM)/2 between x' and its n_neighbors nearest target-class images (NaN: not images)."""
    shape = square_shape(cf.shape[-1])
    if shape is None:  # static: the width is no square image
        return jnp.float32(jnp.nan)
    X, t = ctx.X, effective_target(cf, target, ctx)
    d2 = jnp.sum(X * X, axis=-1) + jnp.dot(cf, cf) - 2.0 * (X @ cf)
    neg_d2, idx = jax.lax.top_k(jnp.where(ctx.y == t, -d2, -jnp.inf), ctx.n_neighbors)
    found = neg_d2 > -jnp.inf
    values = dissimilarity(cf.reshape(shape), X[idx].reshape((-1, *shape)))
    n_found = jnp.sum(found)
    mean = jnp.sum(jnp.where(found, values, 0.0)) / jnp.maximum(n_found, 1)
    return jnp.where((n_found > 0) & _is_pixel_box(ctx), mean, jnp.nan)


register(
    Metric(
        "implausibility_ssim",
        implausibility_ssim,
        needs=("data", "classifier", "constraints"),
        cost=lambda ctx, shape: (max(ctx.n_data, 6 * ctx.n_neighbors * shape[-1]), 1),
        description="ECCCo for images: mean (1 - SSIM)/2 from x' to its n_neighbors nearest target-class images "
        "(Gaussian 11x11 window, sigma 1.5); NaN for non-image data; needs data",
    )
)

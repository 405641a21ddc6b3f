"""Per-feature summaries of a data set shared by generators and metrics."""

from __future__ import annotations

import numpy as np

from cfx._validate import float_dtype

#: A MAD at or below this is treated as zero (a constant feature).
MAD_TOLERANCE = 1e-8


def median_absolute_deviation(X) -> np.ndarray:
    """MAD_j = median_i |X_ij − median_i X_ij| per feature (unscaled, as in Wachter et al. and
    CE.jl), float32 (d,). A zero MAD (a constant feature) becomes 1 so that Σ|Δ_j|/MAD_j stays
    finite (CE.jl instead adds n·1e-5 to every MAD).

    ``X`` is an (n, d) array or anything with an ``.X`` attribute (a :class:`cfx.data.Dataset`).
    """
    X = np.asarray(getattr(X, "X", X), np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"median_absolute_deviation needs an (n, d) array with n >= 1; got shape {X.shape}")
    mad = np.median(np.abs(X - np.median(X, axis=0)), axis=0)
    return np.where(mad > MAD_TOLERANCE, mad, 1.0).astype(float_dtype())

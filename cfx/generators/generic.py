"""Generic (Wachter-style) gradient search and its MAD-weighted variant."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import struct

from cfx import losses
from cfx.generators.base import Generator, Penalty, static


@struct.dataclass(kw_only=True)
class Generic(Generator):
    """min_x'  yloss(f(x'), y+) + cost · dist(x', x),  dist = L1 (default) or L2.

    Defaults (CounterfactualExplanations.jl's generic generator): cost 0.1, L1, plain
    gradient descent with learning rate 0.1. Run it with ``threshold=0.9`` for the
    "conservative threshold" mitigation.
    """

    name = "generic"
    description = "Wachter-style gradient search: yloss + cost * L1 (or L2) distance"

    cost: float = 0.1
    distance: str = static("l1")

    def __post_init__(self):
        super().__post_init__()
        if self.distance not in losses.DISTANCES:
            raise ValueError(f"Generic.distance must be one of {sorted(losses.DISTANCES)}; got {self.distance!r}")

    def terms(self):
        return (Penalty("distance", self.cost, losses.distance_to_factual(self.distance)),)


@struct.dataclass(kw_only=True)
class Wachter(Generator):
    """min_x'  yloss(f(x'), y+) + cost · Σ_j |x'_j − x_j| / MAD_j  (Wachter et al. 2017).

    MAD_j is the median absolute deviation of feature j in the training data; build with
    :meth:`from_data`. The weights apply for every K, including K = 1.
    """

    name = "wachter"
    description = "Wachter et al. 2017: yloss + cost * MAD-weighted L1 distance"

    cost: float = 0.1
    mad: jnp.ndarray | None = None

    @classmethod
    def from_data(cls, data, **hyperparams) -> "Wachter":
        """MAD_j = median_i |X_ij − median(X_j)| from ``data.X`` (a Dataset or an array); zero MADs become 1."""
        X = np.asarray(getattr(data, "X", data), np.float64)
        mad = np.median(np.abs(X - np.median(X, axis=0)), axis=0)
        mad = np.where(mad > 1e-8, mad, 1.0)
        return cls(mad=jnp.asarray(mad, jnp.float32), **hyperparams)

    def validate(self, num_counterfactuals, n_features, n_classes):
        super().validate(num_counterfactuals, n_features, n_classes)
        self._check_width("mad", self.mad, n_features, "build the generator with Wachter.from_data(train)")
        if not np.all(np.asarray(self.mad) > 0):
            raise ValueError("Wachter.mad must be > 0 for every feature")

    def terms(self):
        mad = self.mad  # a leaf: new training data means new values, not a new compilation
        return (Penalty("distance", self.cost, lambda x_cf, x, ctx: losses.mad_l1(x_cf, x, mad)),)

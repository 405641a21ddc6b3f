"""Generic (Wachter-style) gradient search and its MAD-weighted variant."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from cfx import terms
from cfx.stats import median_absolute_deviation
from cfx.generators.base import Generator, Term, fitted, generator_class, static


@generator_class
class Generic(Generator):
    """min_x'  yloss(f(x'), y+) + cost · dist(x', x),  dist = L1 (default), L2 (unsquared),
    ``squared_l2`` or ``mse`` (mean squared difference; see :data:`cfx.terms.DISTANCES`), or
    ``frobenius``: one set term cost · ||X' − x||_F over the K counterfactuals (CE.jl 0.1.5).

    Defaults (CounterfactualExplanations.jl's generic generator): cost 0.1, L1, plain
    gradient descent with learning rate 0.1. ``Generic(threshold=0.9)`` is the
    "conservative threshold" mitigation (registry name ``conservative``).
    """

    name = "generic"
    description = "Wachter-style gradient search: yloss + cost * L1 (or L2) distance"

    cost: float = 0.1
    distance: str = static("l1")

    def __post_init__(self):
        super().__post_init__()
        if self.distance not in terms.DISTANCES and self.distance != "frobenius":
            raise ValueError(
                f"Generic.distance must be one of {sorted(terms.DISTANCES) + ['frobenius']}; got {self.distance!r}"
            )

    def penalties(self):
        return (distance_penalty(self.cost, self.distance),)


def distance_penalty(cost, distance: str) -> Term:
    """The cost term: per counterfactual for a name in :data:`cfx.terms.DISTANCES`, one set term
    for ``"frobenius"``."""
    if distance == "frobenius":
        return Term("distance", cost, terms.frobenius_to_factual, per="set")
    return Term("distance", cost, terms.distance_to_factual(distance))


@generator_class
class Wachter(Generator):
    """min_x'  yloss(f(x'), y+) + cost · Σ_j |x'_j − x_j| / MAD_j  (Wachter et al. 2017).

    MAD_j is the median absolute deviation of feature j in the training data, computed by
    :meth:`fit` (or :meth:`from_data`). The weights apply for every K, including K = 1.
    ``weights="none"`` (static; default ``"mad"``) drops them for a plain cost · ‖x' − x‖₁: what
    CounterfactualExplanations.jl 0.1.31's ``distance_mad`` computes for one counterfactual (its
    ``distance`` ignores the weights when K = 1), as the ECCCo reference runs it.
    """

    name = "wachter"
    description = "Wachter et al. 2017: yloss + cost * MAD-weighted L1 distance"

    cost: float = 0.1
    weights: str = static("mad")
    mad: jnp.ndarray | None = fitted()

    def __post_init__(self):
        super().__post_init__()
        if self.weights not in ("mad", "none"):
            raise ValueError(f"Wachter.weights must be 'mad' or 'none'; got {self.weights!r}")

    def fit(self, classifier, data, *, key):
        """MAD_j = median_i |X_ij − median(X_j)| of ``data.X``; zero MADs become 1."""
        return self.replace(mad=jnp.asarray(median_absolute_deviation(data)))

    @classmethod
    def from_data(cls, data, **hyperparams) -> "Wachter":
        """``Wachter(**hyperparams).fit(None, data)``: ``data`` a Dataset or an (n, d) array."""
        return cls(**hyperparams).fit(None, data, key=None)

    def validate(self, num_counterfactuals, n_features, n_classes):
        super().validate(num_counterfactuals, n_features, n_classes)
        self._check_width("mad", self.mad, n_features, "fit the generator, e.g. Wachter.from_data(train),")
        if not np.all(np.asarray(self.mad) > 0):
            raise ValueError("Wachter.mad must be > 0 for every feature")

    def penalties(self):
        if self.weights == "none":
            return (Term("distance", self.cost, terms.distance_to_factual("l1")),)
        mad = self.mad  # a leaf: new training data means new values, not a new compilation
        return (Term("distance", self.cost, lambda x_cf, x, ctx: terms.mad_l1(x_cf, x, mad)),)

"""DiCE: diverse counterfactual explanations (Mothilal et al. 2020)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from cfx import losses
from cfx.generators.base import Generator, Penalty, generator, static
from cfx.generators.generic import distance_penalty


@generator
class DiCE(Generator):
    """min over K counterfactuals  Σ_k [yloss(f(x'_k), y+) + cost · ||x'_k − x||_1] − diversity · det(K),

    K_ij = 1 / (1 + ||x'_i − x'_j||_2) + jitter·1[i = j]. Needs ``num_counterfactuals > 1``
    (default 3). Defaults: cost 0.1, diversity 0.1, Adam with learning rate 0.05, noisy start
    (the K counterfactuals must start apart for the diversity gradient to be non-zero).

    ``stop="each"`` (SPEC §1: every counterfactual converges and freezes on its own) or
    ``"set"`` (the DiCE library's rule: a factual's K stop together, once p(y+|x'_k) >= τ for
    every k, so the diversity term keeps acting until the whole set is valid).

    ``distance`` as :class:`Generic`'s (``"frobenius"``: CE.jl 0.1.5). ``diversity_distance``: the
    kernel's distance, ``"l2"`` (CE.jl) or ``"l1"`` (the DiCE paper and dice-ml). In the standardised
    search space (``space="standardized"``) the diversity is measured on s = (x' − μ)/σ, as CE.jl
    0.1.5 does.
    """

    name = "dice"
    description = "Mothilal et al. 2020: L1 cost + determinantal diversity over K counterfactuals"

    learning_rate: float = 0.05
    optimizer: str = static("adam")
    init: str = static("noise")
    num_counterfactuals: int = static(3)
    cost: float = 0.1
    diversity: float = 0.1
    stop: str = static("each")
    distance: str = static("l1")
    diversity_distance: str = static("l2")

    def validate(self, num_counterfactuals, n_features, n_classes):
        super().validate(num_counterfactuals, n_features, n_classes)
        if num_counterfactuals < 2:
            raise ValueError(f"DiCE needs num_counterfactuals > 1 to measure diversity; got {num_counterfactuals}")
        if self.diversity_distance not in ("l1", "l2"):
            raise ValueError(f"DiCE.diversity_distance must be 'l1' or 'l2'; got {self.diversity_distance!r}")
        if self.stop not in ("each", "set"):
            raise ValueError(f"DiCE.stop must be 'each' or 'set'; got {self.stop!r}")

    def condition(self, x_cf, logits, target, classifier):
        """stop="set": (n, K) True only where all K of the factual reach p(y+|x') >= τ."""
        if self.stop == "each":
            return None
        p = jnp.take_along_axis(jax.nn.softmax(logits, axis=-1), target[:, None, None], axis=-1)[..., 0]
        return jnp.broadcast_to(jnp.all(p >= self.threshold, axis=1, keepdims=True), p.shape)

    def penalties(self):
        diversity = functools.partial(losses.dice_diversity, distance=self.diversity_distance)
        if self.space == "standardized":
            mean, scale, div = self.space_mean, self.space_scale, diversity
            diversity = lambda x_cfs, x, ctx: div((x_cfs - mean) / scale, x, ctx)  # noqa: E731
        return (distance_penalty(self.cost, self.distance), Penalty("diversity", self.diversity, diversity, per="set"))

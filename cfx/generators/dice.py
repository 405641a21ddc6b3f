"""DiCE: diverse counterfactual explanations (Mothilal et al. 2020)."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cfx import terms
from cfx.generators.base import Generator, Term, fitted, generator_class, static
from cfx.generators.generic import distance_penalty


@generator_class
class DiCE(Generator):
    """min over K counterfactuals  Σ_k [yloss(f(x'_k), y+) + cost · ||x'_k − x||_1] − diversity · det(K),

    K_ij = 1 / (1 + ||x'_i − x'_j||_2) + jitter·1[i = j]. Needs ``num_counterfactuals > 1``
    (default 3). Defaults: cost 0.1, diversity 0.1, Adam with learning rate 0.05, noisy start
    (the K counterfactuals must start apart for the diversity gradient to be non-zero).

    ``stop="each"`` (SPEC §1: every counterfactual converges and freezes on its own) or
    ``"set"`` (the DiCE library's rule: a factual's K stop together, once p(y+|x'_k) >= τ for
    every k, so the diversity term keeps acting until the whole set is valid).

    ``distance`` as :class:`Generic`'s (``"frobenius"``: CE.jl 0.1.5). ``diversity_distance``: the
    kernel's distance, ``"l2"`` (CE.jl) or ``"l1"`` (the DiCE paper and dice-ml).
    ``feature_weights`` (d,) (None: 1): the L1 proximity and an ``"l1"`` kernel weigh feature j
    by w_j, Σ_j w_j |Δ_j|, as dice-ml's ``feature_weights`` (:func:`dice_ml_feature_weights`). In the standardised
    search space (``space="standardized"``) the diversity is measured on s = (x' − μ)/σ, as CE.jl
    0.1.5 does.
    """

    name = "dice"
    description = "Mothilal et al. 2020: L1 cost + determinantal diversity over K counterfactuals"

    learning_rate: float = 0.05
    optimizer: str = static("adam")
    start: str = static("noise")
    num_counterfactuals: int = static(3)
    cost: float = 0.1
    diversity: float = 0.1
    stop: str = static("each")
    distance: str = static("l1")
    diversity_distance: str = static("l2")
    feature_weights: Any = fitted()

    def validate(self, num_counterfactuals, n_features, n_classes):
        super().validate(num_counterfactuals, n_features, n_classes)
        if num_counterfactuals < 2:
            raise ValueError(f"DiCE needs num_counterfactuals > 1 to measure diversity; got {num_counterfactuals}")
        if self.diversity_distance not in ("l1", "l2"):
            raise ValueError(f"DiCE.diversity_distance must be 'l1' or 'l2'; got {self.diversity_distance!r}")
        if self.feature_weights is not None:
            self._check_width("feature_weights", self.feature_weights, n_features, "use dice_ml_feature_weights(train)")
            w = np.asarray(self.feature_weights)
            if not (np.all(np.isfinite(w)) and np.all(w >= 0)):
                raise ValueError("DiCE.feature_weights must be finite and >= 0")
            if self.distance != "l1" or self.diversity_distance != "l1":
                raise ValueError(
                    "DiCE.feature_weights weigh L1 distances: needs distance='l1' and "
                    f"diversity_distance='l1'; got {self.distance!r}, {self.diversity_distance!r}"
                )
        if self.stop not in ("each", "set"):
            raise ValueError(f"DiCE.stop must be 'each' or 'set'; got {self.stop!r}")

    def condition(self, x_cf, logits, target, classifier):
        """stop="set": (n, K) True only where all K of the factual reach p(y+|x') >= τ."""
        if self.stop == "each":
            return None
        p = jnp.take_along_axis(jax.nn.softmax(logits, axis=-1), target[:, None, None], axis=-1)[..., 0]
        return jnp.broadcast_to(jnp.all(p >= self.threshold, axis=1, keepdims=True), p.shape)

    def penalties(self):
        diversity = functools.partial(terms.dice_diversity, distance=self.diversity_distance)
        if self.feature_weights is not None:  # a leaf: new data, new values, no recompilation
            w = self.feature_weights
            proximity = Term("distance", self.cost, lambda x_cf, x, ctx: jnp.sum(w * jnp.abs(x_cf - x)))
            return proximity, Term(
                "diversity", self.diversity, lambda x_cfs, x, ctx: diversity(x_cfs * w, x, ctx), per="set"
            )
        if self.space == "standardized":
            mean, scale, div = self.space_mean, self.space_scale, diversity
            diversity = lambda x_cfs, x, ctx: div((x_cfs - mean) / scale, x, ctx)  # noqa: E731
        return (distance_penalty(self.cost, self.distance), Term("diversity", self.diversity, diversity, per="set"))


def dice_ml_feature_weights(data) -> tuple[np.ndarray, int]:
    """dice-ml's distance (its gradient DiCE, ``feature_weights="inverse_mad"``) in cfx's encoded
    units, and dice-ml's encoded width d' (its proximity is divided by d').

    dice-ml scales a numeric column to [0, 1] by the training range r and weighs it there by
    round(1/MAD', 2), MAD' = MAD/r (a zero MAD' counts as 1); every other column is one-hot, each
    level column weighing 1 (a binary column: two columns, so a flip costs 2; an ordinal one is
    one-hot too). With cfx's encoded column Δ_j = Δ_raw / scale_j: numeric w_j = round(r/MAD, 2)
    · scale_j / r (zero MAD: scale_j / r), binary and ordinal 2 · scale_j (per level step), one-hot
    level columns scale_j. ``data``: the training :class:`cfx.data.Dataset` (tabular: its encoder).
    """
    enc = getattr(data, "encoder", None)
    if enc is None:
        raise ValueError("dice_ml_feature_weights needs a tabular Dataset with an encoder (cfx.data.load / from_frame)")
    scale = np.asarray(enc.scale, np.float64)
    raw = np.asarray(data.X, np.float64) * scale + np.asarray(enc.mean, np.float64)
    w, width = np.zeros(raw.shape[1]), 0
    for c, (a, b) in zip(enc.columns, enc.spans()):
        if c.kind in ("continuous", "integer"):
            col = raw[:, a]
            r = float(col.max() - col.min())
            mad = float(np.median(np.abs(col - np.median(col)))) / r if r > 0 else 0.0
            w[a] = (round(1.0 / mad, 2) if mad > 0 else 1.0) * scale[a] / r if r > 0 else 0.0
            width += 1
        elif c.kind == "categorical":
            w[a:b] = scale[a:b]
            width += b - a
        else:  # binary, ordinal: one column here, one-hot in dice-ml (a change moves two of its columns)
            w[a] = 2.0 * scale[a]
            width += len(c.levels)
    return w.astype(np.float32), width

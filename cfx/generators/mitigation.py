"""Mitigation strategies against endogenous recourse dynamics (Altmeyer et al., SaTML 2023)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from cfx import losses
from cfx.generators.base import Generator, Penalty, static

VARIANTS = ("code", "paper")


def _check_variant(cls_name: str, variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"{cls_name}.variant must be one of {VARIANTS}; got {variant!r}")


@struct.dataclass(kw_only=True)
class Gravitational(Generator):
    """Pull counterfactuals towards the target class.

    ``variant="code"`` (default, CounterfactualExplanations.jl):
        yloss + cost · ||x' − x||_1 + gravity · mean_k ||x' − n_k||_1,
        n_k the ``n_neighbours`` = 50 target-class points nearest to the factual, chosen once
        per search from a fixed bank of target-class samples; cost 0.1, gravity 0.5.
    ``variant="paper"``:
        yloss + cost · ||x' − x||_2 + gravity · ||x̄ − x'||_2, x̄ the mean of 50 randomly drawn
        target-class points; use cost 0.1, gravity 1.0.

    Build with :meth:`from_data`, which stores a bank of at most ``bank_size`` samples per
    class (a fixed-size leaf, so new data never recompiles).
    """

    name = "gravitational"
    description = "SaTML 2023 mitigation: cost + distance to target-class points"

    cost: float = 0.1
    gravity: float = 0.5
    bank: jnp.ndarray | None = None  # (C, M, d) target-class samples per class
    n_neighbours: int = static(50)
    variant: str = static("code")

    def __post_init__(self):
        super().__post_init__()
        _check_variant("Gravitational", self.variant)

    @classmethod
    def from_data(cls, data, *, bank_size: int = 1000, seed: int = 0, **hyperparams) -> "Gravitational":
        """Sample ``bank_size`` points per class from ``data`` (with replacement if a class is smaller)."""
        variant = hyperparams.get("variant", "code")
        if variant == "paper":
            bank_size = hyperparams.get("n_neighbours", 50)
            hyperparams.setdefault("gravity", 1.0)
        rng = np.random.default_rng(seed)
        X, y = np.asarray(data.X, np.float32), np.asarray(data.y)
        bank = []
        for c in range(int(y.max()) + 1):
            members = np.flatnonzero(y == c)
            if len(members) == 0:
                raise ValueError(f"Gravitational.from_data: data has no points of class {c}")
            bank.append(X[rng.choice(members, bank_size, replace=len(members) < bank_size)])
        return cls(bank=jnp.asarray(np.stack(bank)), **hyperparams)

    def validate(self, num_counterfactuals, n_features, n_classes):
        super().validate(num_counterfactuals, n_features, n_classes)
        hint = "build the generator with Gravitational.from_data(train)"
        self._check_width("bank", self.bank, n_features, hint)
        if np.shape(self.bank)[0] < n_classes:
            raise ValueError(
                f"Gravitational.bank holds samples of {np.shape(self.bank)[0]} classes; the classifier has "
                f"{n_classes} ({hint} with the classifier's training data)"
            )

    def prepare(self, classifier, x, target):
        samples = self.bank[target]  # (n, M, d)
        if self.variant == "paper":
            return {"centre": samples.mean(axis=1)}
        k = min(self.n_neighbours, samples.shape[1])
        dist = jnp.sum(jnp.abs(samples - x[:, None, :]), axis=-1)
        _, idx = jax.lax.top_k(-dist, k)
        return {"neighbours": jnp.take_along_axis(samples, idx[..., None], axis=1)}

    def terms(self):
        if self.variant == "paper":
            return (
                Penalty("distance", self.cost, losses.distance_to_factual("l2")),
                Penalty("gravity", self.gravity, lambda x_cf, x, ctx: losses.l2(x_cf, ctx.data["centre"])),
            )
        return (
            Penalty("distance", self.cost, losses.distance_to_factual("l1")),
            Penalty("gravity", self.gravity, losses.mean_distance_to_neighbours("l1")),
        )


@struct.dataclass(kw_only=True)
class ClaPROAR(Generator):
    """Classifier-preserving recourse: also minimise the model's own loss at x'.

    ``variant="code"`` (default, CounterfactualExplanations.jl): yloss + cost · ||x' − x||_1
    + loss_weight · CE(f(x'), y+), cost 0.1, loss_weight 0.5.
    ``variant="paper"``: L2 cost, and the model-loss term switched on only once
    p(y+|x') >= 0.5; use cost 0.1, loss_weight 1.0.
    For a deep ensemble the model-loss term is the members' mean loss (SPEC §1).
    """

    name = "claproar"
    description = "SaTML 2023 mitigation: cost + the classifier's loss at the counterfactual"

    cost: float = 0.1
    loss_weight: float = 0.5
    variant: str = static("code")

    def __post_init__(self):
        super().__post_init__()
        _check_variant("ClaPROAR", self.variant)

    def terms(self):
        paper = self.variant == "paper"
        return (
            Penalty("distance", self.cost, losses.distance_to_factual("l2" if paper else "l1")),
            Penalty("model_loss", self.loss_weight, losses.model_loss(gate=0.5 if paper else None)),
        )

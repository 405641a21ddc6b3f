"""Mitigation strategies against endogenous recourse dynamics (Altmeyer et al., SaTML 2023)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from cfx import losses
from cfx.generators.base import Generator, Penalty, fitted, generator, numpy_rng, static

VARIANTS = ("code", "paper")


def _check_variant(cls_name: str, variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"{cls_name}.variant must be one of {VARIANTS}; got {variant!r}")


@generator
class Gravitational(Generator):
    """Pull counterfactuals towards the target class.

    ``variant="code"`` (default, CounterfactualExplanations.jl):
        yloss + cost · ||x' − x||_1 + gravity · mean_k ||x' − n_k||_1,
        n_k the ``n_neighbours`` = 50 target-class points nearest to the factual, chosen once
        per search from a fixed bank of target-class samples; cost 0.1, gravity 0.5.
    ``variant="paper"``:
        yloss + cost · ||x' − x||_2 + gravity · ||x̄ − x'||_2, x̄ the mean of 50 randomly drawn
        target-class points; use cost 0.1, gravity 1.0.

    :meth:`fit` stores a bank of ``bank_size`` samples per class (a fixed-size leaf, so new
    data never recompiles), drawn with replacement when a class is smaller.
    """

    name = "gravitational"
    description = "SaTML 2023 mitigation: cost + distance to target-class points"

    cost: float = 0.1
    gravity: float | None = None  # default 0.5 (code) / 1.0 (paper)
    bank: jnp.ndarray | None = fitted()  # (C, M, d) target-class samples per class
    n_neighbours: int = static(50)
    bank_size: int = static(1000)
    variant: str = static("code")

    def __post_init__(self):
        super().__post_init__()
        _check_variant("Gravitational", self.variant)
        if self.gravity is None:
            object.__setattr__(self, "gravity", 1.0 if self.variant == "paper" else 0.5)

    def fit(self, classifier, data, *, key):
        """Sample the bank from ``data`` (numpy, seeded from ``key``; the paper variant keeps
        ``n_neighbours`` points per class, whose mean is the centre)."""
        size = self.n_neighbours if self.variant == "paper" else self.bank_size
        rng = numpy_rng(jax.random.key(0) if key is None else key)
        X, y = np.asarray(data.X, np.float32), np.asarray(data.y)
        bank = []
        for c in range(int(y.max()) + 1):
            members = np.flatnonzero(y == c)
            if len(members) == 0:
                raise ValueError(f"Gravitational.fit: data has no points of class {c}")
            bank.append(X[rng.choice(members, size, replace=len(members) < size)])
        return self.replace(bank=jnp.asarray(np.stack(bank)))

    @classmethod
    def from_data(cls, data, *, seed: int = 0, **hyperparams) -> "Gravitational":
        """``Gravitational(**hyperparams).fit(None, data, key=jax.random.key(seed))``."""
        return cls(**hyperparams).fit(None, data, key=jax.random.key(seed))

    def validate(self, num_counterfactuals, n_features, n_classes):
        super().validate(num_counterfactuals, n_features, n_classes)
        hint = "fit the generator, e.g. Gravitational.from_data(train),"
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

    def penalties(self):
        if self.variant == "paper":
            return (
                Penalty("distance", self.cost, losses.distance_to_factual("l2")),
                Penalty("gravity", self.gravity, lambda x_cf, x, ctx: losses.l2(x_cf, ctx.data["centre"])),
            )
        return (
            Penalty("distance", self.cost, losses.distance_to_factual("l1")),
            Penalty("gravity", self.gravity, losses.mean_distance_to_neighbours("l1")),
        )


@generator
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

    def penalties(self):
        paper = self.variant == "paper"
        return (
            Penalty("distance", self.cost, losses.distance_to_factual("l2" if paper else "l1")),
            Penalty("model_loss", self.loss_weight, losses.model_loss(gate=0.5 if paper else None)),
        )

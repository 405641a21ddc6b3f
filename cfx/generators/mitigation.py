"""Mitigation strategies against endogenous recourse dynamics (Altmeyer et al., SaTML 2023)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from cfx import terms
from cfx.generators.base import Generator, Term, fitted, generator_class, numpy_rng, static

VARIANTS = ("code", "paper", "0.1.5")


def _check_variant(cls_name: str, variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"{cls_name}.variant must be one of {VARIANTS}; got {variant!r}")


@generator_class
class Gravitational(Generator):
    """Pull counterfactuals towards the target class.

    ``variant="code"`` (default, CounterfactualExplanations.jl):
        yloss + cost · ||x' − x||_1 + gravity · mean_k ||x' − n_k||_1,
        n_k the ``n_neighbours`` = 50 target-class points nearest to the factual, chosen once
        per search from a fixed bank of target-class samples; cost 0.1, gravity 0.5.
    ``variant="paper"``:
        yloss + cost · ||x' − x||_2 + gravity · ||x̄ − x'||_2, x̄ the mean of 50 randomly drawn
        target-class points; use cost 0.1, gravity 1.0.
    ``variant="0.1.5"`` (CounterfactualExplanations.jl 0.1.5, as the SaTML 2023 experiments ran):
        set terms cost · ||X' − x||_F + gravity · ||X' − x̄||_F over the K counterfactuals, x̄ the
        mean of ``n_neighbours`` = 50 target-class points drawn at random (with replacement) from
        the bank for each factual; gravity 5.0. The draw's key is the refit's key folded with
        the factual's coordinates, so it is fixed per factual and round.

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
    draw_key: jnp.ndarray | None = fitted()  # variant 0.1.5: uint32 key data of the per-factual draws

    def __post_init__(self):
        super().__post_init__()
        _check_variant("Gravitational", self.variant)
        if self.gravity is None:
            object.__setattr__(self, "gravity", {"paper": 1.0, "code": 0.5, "0.1.5": 5.0}[self.variant])

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
            replace = len(members) < size or self.variant == "0.1.5"  # CE.jl 0.1.5: rand(ids, n), replaced
            bank.append(X[rng.choice(members, size, replace=replace)])
        draw_key = rng.integers(0, 2**32, size=2, dtype=np.uint32) if self.variant == "0.1.5" else None
        return self.replace(bank=jnp.asarray(np.stack(bank)), draw_key=draw_key)

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
        if self.variant == "0.1.5":
            key = jax.random.wrap_key_data(jnp.asarray(self.draw_key, jnp.uint32))
            bits = jax.lax.bitcast_convert_type(x.astype(jnp.float32), jnp.uint32)
            seeds = jnp.sum(bits * (jnp.arange(x.shape[-1], dtype=jnp.uint32) * 2 + 1) * jnp.uint32(2654435761), -1)
            idx = jax.vmap(
                lambda s: jax.random.randint(jax.random.fold_in(key, s), (self.n_neighbours,), 0, samples.shape[1])
            )(seeds)
            return {"centre": jnp.take_along_axis(samples, idx[..., None], axis=1).mean(axis=1)}
        if self.variant == "paper":
            return {"centre": samples.mean(axis=1)}
        k = min(self.n_neighbours, samples.shape[1])
        dist = jnp.sum(jnp.abs(samples - x[:, None, :]), axis=-1)
        _, idx = jax.lax.top_k(-dist, k)
        return {"neighbours": jnp.take_along_axis(samples, idx[..., None], axis=1)}

    def penalties(self):
        if self.variant == "0.1.5":
            return (
                Term("distance", self.cost, terms.frobenius_to_factual, per="set"),
                Term("gravity", self.gravity, terms.frobenius_to_point("centre"), per="set"),
            )
        if self.variant == "paper":
            return (
                Term("distance", self.cost, terms.distance_to_factual("l2")),
                Term("gravity", self.gravity, lambda x_cf, x, ctx: terms.l2(x_cf, ctx.data["centre"])),
            )
        return (
            Term("distance", self.cost, terms.distance_to_factual("l1")),
            Term("gravity", self.gravity, terms.mean_distance_to_neighbours("l1")),
        )


@generator_class
class ClaPROAR(Generator):
    """Classifier-preserving recourse: also minimise the model's own loss at x'.

    ``variant="code"`` (default, CounterfactualExplanations.jl): yloss + cost · ||x' − x||_1
    + loss_weight · CE(f(x'), y+), cost 0.1, loss_weight 0.5.
    ``variant="paper"``: L2 cost, and the model-loss term switched on only once
    p(y+|x') >= 0.5; use cost 0.1, loss_weight 1.0.
    ``variant="0.1.5"`` (CE.jl 0.1.5, as the SaTML 2023 experiments ran): set terms
    cost · ||X' − x||_F + loss_weight · :func:`cfx.terms.set_model_loss` (the model's loss,
    switched on once all K are predicted y+); loss_weight 5.0.
    For a deep ensemble the model-loss term is the members' mean loss (SPEC §1).
    """

    name = "claproar"
    description = "SaTML 2023 mitigation: cost + the classifier's loss at the counterfactual"

    cost: float = 0.1
    loss_weight: float | None = None  # default 0.5 (code) / 1.0 (paper) / 5.0 (0.1.5)
    variant: str = static("code")

    def __post_init__(self):
        super().__post_init__()
        _check_variant("ClaPROAR", self.variant)
        if self.loss_weight is None:
            object.__setattr__(self, "loss_weight", {"paper": 1.0, "code": 0.5, "0.1.5": 5.0}[self.variant])

    def penalties(self):
        if self.variant == "0.1.5":
            return (
                Term("distance", self.cost, terms.frobenius_to_factual, per="set"),
                Term("model_loss", self.loss_weight, terms.set_model_loss, per="set"),
            )
        paper = self.variant == "paper"
        return (
            Term("distance", self.cost, terms.distance_to_factual("l2" if paper else "l1")),
            Term("model_loss", self.loss_weight, terms.model_loss(gate=0.5 if paper else None)),
        )

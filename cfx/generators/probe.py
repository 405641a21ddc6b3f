"""Probe (Pawelczyk et al. 2022): recourse that stays valid under noisy implementation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.stats import norm

from cfx import _reductions as reductions
from cfx import terms
from cfx.generators.base import Generator, Term, check_positive, generator_class


def target_margin(logits: jax.Array, target) -> jax.Array:
    """f_t = f_{y⁺} − logsumexp_{c ≠ y⁺} f_c: the target's logit margin (f itself for [0, f])."""
    others = jnp.where(jnp.arange(logits.shape[-1]) == target, -jnp.inf, logits)
    return reductions.pick_last(logits, target) - reductions.logsumexp_last(others)


def invalidation_rate(classifier, x_cf: jax.Array, target, noise_variance) -> jax.Array:
    """IR(x') = 1 − Φ(f_t(x') / (σ ‖∇f_t(x')‖₂)): the probability that x' + ε,
    ε ~ N(0, σ² I), falls back out of the target class (first-order; Pawelczyk et al. 2022)."""
    margin = lambda point: target_margin(classifier.raw_logits(point), target)
    f, grad = jax.value_and_grad(margin)(x_cf)
    scale = jnp.sqrt(noise_variance * jnp.sum(grad**2) + 1e-12)
    return 1.0 - norm.cdf(f / scale)


@generator_class
class Probe(Generator):
    """min_x'  yloss(f(x'), y⁺) + cost · ‖x' − x‖₁ + robustness · max(0, IR(x') − r)

    with the invalidation rate IR of :func:`invalidation_rate`, σ² = ``noise_variance``
    (0.01, SPEC §1) and the target rate r = ``invalidation_rate``. The hinge's gradient flows
    through IR, second derivatives of the model included (CE.jl's hinge has zero gradient: a
    known bug not repeated here). A row converges once p(y⁺|x') >= τ **and** IR(x') <= r.
    Defaults: cost 0.1, robustness 1.0, r = 0.1 (the paper studies targets 0.05–0.35),
    plain gradient descent η = 0.1.
    """

    name = "probe"
    description = "Pawelczyk et al. 2022: L1 cost + hinge on the invalidation rate under Gaussian noise"
    regression_refusal = (
        "its invalidation rate models a classifier's decision under input noise, with a target "
        "rate r on class probabilities; it is not defined or validated for an interval"
    )

    cost: float = 0.1
    robustness: float = 1.0
    invalidation_rate: float = 0.1
    noise_variance: float = 0.01

    def validate(self, num_counterfactuals, n_features, n_classes):
        super().validate(num_counterfactuals, n_features, n_classes)
        check_positive("Probe.noise_variance", self.noise_variance)
        rate = float(self.invalidation_rate)
        if not 0.0 < rate < 1.0:
            raise ValueError(f"Probe.invalidation_rate must be in (0, 1); got {self.invalidation_rate!r}")

    def penalties(self):
        def hinge(x_cf, x, ctx):
            rate = invalidation_rate(ctx.classifier, x_cf, ctx.target, self.noise_variance)
            return jnp.maximum(0.0, rate - self.invalidation_rate)

        return (
            Term("distance", self.cost, terms.distance_to_factual("l1")),
            Term("invalidation", self.robustness, hinge),
        )

    def condition(self, x_cf, logits, target, classifier):
        rate = jax.vmap(
            jax.vmap(lambda point, t: invalidation_rate(classifier, point, t, self.noise_variance), (0, None))
        )(x_cf, target)
        return rate <= self.invalidation_rate

"""Schut et al. (2021): greedy, JSMA-style search for (Bayesian / ensemble) classifiers."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cfx.constraints import DECREASE, INCREASE, NONE
from cfx.generators.base import Generator, check_positive, generator_class, static


@generator_class
class Greedy(Generator):
    """No penalty; each step moves only the feature j* with the largest |∂yloss/∂x'_j| by
    step_size · sign(−∂yloss/∂x'_j*), and each feature moves at most ``max_changes`` times.

    Features that may not move that way (immutable, or monotone in the other direction) or
    that used up their changes are never chosen. Defaults (CounterfactualExplanations.jl):
    step_size 0.1, max_changes 10 (the ECCCo experiments use 0.05 and 20).
    """

    name = "greedy"
    description = "Schut et al. 2021: JSMA-style single-feature moves on the largest gradient"

    step_size: float = 0.1
    max_changes: int = static(10)

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.max_changes, int) or self.max_changes < 1:
            raise ValueError(f"Greedy.max_changes must be an int >= 1; got {self.max_changes!r}")

    def validate(self, num_counterfactuals, n_features, n_classes):
        super().validate(num_counterfactuals, n_features, n_classes)
        check_positive("Greedy.step_size", self.step_size)

    def init_update(self, z, ctx):
        return jnp.zeros(z.shape, jnp.int32)  # changes used per feature

    def update(self, grad, changes, z, ctx):
        direction = -jnp.sign(grad)
        m = ctx.constraints.mutability
        allowed = (
            (m != NONE)
            & ~((m == INCREASE) & (direction < 0))
            & ~((m == DECREASE) & (direction > 0))
            & (changes < self.max_changes)
            & (direction != 0)
        )
        score = jnp.where(allowed, jnp.abs(grad), -1.0)
        chosen = jax.nn.one_hot(jnp.argmax(score, axis=-1), z.shape[-1], dtype=bool)
        chosen &= allowed  # nothing moves when no feature is allowed
        z_next = z + jnp.where(chosen, self.step_size * direction, 0.0)
        return z_next, changes + chosen.astype(jnp.int32)

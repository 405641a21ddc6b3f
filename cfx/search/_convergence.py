"""Convergence rules of the search: has a counterfactual reached its target class?

Every function takes logits (..., C) and the target and factual classes shaped like the
logits' leading axes (broadcastable); target −1 marks an untargeted row (any class but the
factual's). The class aimed at, a, is y+ or, untargeted, the best class but the factual's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cfx._reductions import max_last, sum_last

GRADIENT_TOLERANCE = 0.01  # "generator conditions": every |∂loss/∂x'_j| below this
RULES = ("threshold", "generator_conditions", "gradient", "max_steps")


def _odds(logits, target, factual_class):
    """(p_c / p_a for every class c (..., C), whether c is the factual's class, untargeted)."""
    classes = jnp.arange(logits.shape[-1])
    untargeted = (target < 0)[..., None]
    is_factual = classes == factual_class[..., None]
    aimed = jnp.where(untargeted, ~is_factual, classes == target[..., None])
    f_aimed = max_last(jnp.where(aimed, logits, -jnp.inf))[..., None]
    return jnp.exp(logits - f_aimed), is_factual, untargeted[..., 0]


def class_probs(logits, target, factual_class):
    """p_a = 1 / Σ_c exp(f_c − f_a): p(y+|x'), or untargeted the largest p of a class ≠ the factual's.

    An overflowing logit (±inf) gives its limit probability, not NaN (its search row says nonfinite)."""
    big = jnp.finfo(logits.dtype).max
    odds, _, _ = _odds(jnp.clip(logits, -big, big), target, factual_class)
    return 1.0 / sum_last(odds)


def reached(logits, target, factual_class, threshold):
    """p_a >= τ, i.e. Σ_c exp(f_c − f_a) <= 1/τ; untargeted rows must also have left the
    factual's class (p_factual < p_a). One max and one sum over the classes, masks rather than
    gathers or an argmax: this runs in every search step, where each extra pass shows."""
    odds, is_factual, untargeted = _odds(logits, target, factual_class)
    moved = sum_last(jnp.where(is_factual, odds, 0.0)) < 1.0
    return (sum_last(odds) <= 1.0 / threshold) & (moved | ~untargeted)


def converged(logits, grad, target, factual_class, threshold, rule: str) -> jax.Array:
    """The convergence ``rule`` as an array predicate: ``"threshold"`` (:func:`reached`),
    ``"gradient"`` (every |∂loss/∂x'_j| < :data:`GRADIENT_TOLERANCE`), both
    (``"generator_conditions"``), or never (``"max_steps"``). ``grad``: (..., d)."""
    flat = max_last(jnp.abs(grad)) < GRADIENT_TOLERANCE
    if rule == "gradient":
        return flat
    hit = reached(logits, target, factual_class, threshold)
    if rule == "max_steps":
        return jnp.zeros_like(hit)
    return hit & flat if rule == "generator_conditions" else hit

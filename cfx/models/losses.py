"""Training losses for :func:`cfx.models.train_step` and :func:`cfx.models.fit`.

Each loss follows the protocol of :mod:`cfx.models.step`::

    loss_fn(params, batch, key, *, apply, extra) -> (loss, (new_extra, aux_metrics))

and reduces per-example terms ℓ_i with the weighted mean ``Σ_i w_i ℓ_i / Σ_i w_i``, so
padded slots (``w_i = 0``) never count. Here: softmax cross-entropy. JEM, the VAE's
ELBO and counterfactual training live in their own modules and plug in the same way.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from cfx.classifier import two_class_logits
from cfx.models.step import Batch, TrainApply
from cfx._reductions import logsumexp_last, pick_last


def weighted_mean(values: jax.Array, w: jax.Array) -> jax.Array:
    """``Σ_i w_i v_i / Σ_i w_i`` over the leading axis; 0 when all weights are 0."""
    total = jnp.sum(w)
    # The guarded denominator keeps the gradient finite for an all-padding batch.
    return jnp.sum(values * w) / jnp.where(total > 0, total, 1.0)


def weighted_cross_entropy(logits: jax.Array, y: jax.Array, w: jax.Array) -> jax.Array:
    """``Σ_i w_i CE(f(x_i), y_i) / Σ_i w_i`` with ``CE(f, y) = −log softmax(f)_y``.

    ``logits`` (B, C) with C >= 2, or (B, 1) for a single binary logit f, read as [0, f]
    (softmax CE on [0, f] is exactly logit binary cross-entropy).
    """
    logits = two_class_logits(logits)
    # optax's form (logsumexp − f_y) with the class sums unrolled and f_y a masked pick.
    return weighted_mean(logsumexp_last(logits) - pick_last(logits, y), w)


def cross_entropy(params: Any, batch: Batch, key: jax.Array, *, apply: TrainApply, extra: Any) -> tuple:
    """The default loss: weighted softmax cross-entropy of the training-mode logits.

    ``L(θ) = Σ_i w_i CE(f_θ(x_i), y_i) / Σ_i w_i``; ``key`` feeds dropout. ``extra`` is
    passed through unchanged and there are no aux metrics.

    Example::

        loss, (extra, aux) = cross_entropy(params, Batch(x, y, w), key, apply=apply, extra=None)
    """
    return weighted_cross_entropy(apply(params, batch.x, key), batch.y, batch.w), (extra, {})


def batch_loss(member: Any, params: Any, x: jax.Array, y: jax.Array, w: jax.Array, key) -> jax.Array:
    """``Σ_i w_i CE(f(x_i), y_i) / Σ_i w_i`` for a :class:`cfx.models.ModuleApply` ``member``.

    The cross-entropy loss in the older positional form; ``key=None`` gives the
    deterministic forward pass, a key switches dropout on.
    """
    return weighted_cross_entropy(member.train_logits(params, x, key), y, w)

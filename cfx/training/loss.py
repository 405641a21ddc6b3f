"""The counterfactual-training loss and train step (SPEC §5, CounterfactualTraining.jl).

Per batch, with E(x, y) = −f_y(x), factual labels y, targets y⁺, mature counterfactuals
x'_CE, nascent ones x'_AE and target-class samples x⁺ (every mean weighted by the slot
weights, so padded slots never count)::

    L = λ_ce·CE(f(x), y) + λ_div·mean[E(x̃⁺, y⁺) − E(x'_CE, y⁺)]
        + λ_reg·mean[f_{y⁺}(x̃⁺)² + f_{y⁺}(x'_CE)²] + λ_adv·CE(f(x'_AE), y)

x̃⁺ is x⁺ with its protected features taken from x'_CE (immutable: x̃⁺_d = x'_d;
increase-only: max(x⁺_d, x'_d); decrease-only: min(x⁺_d, x'_d)), so the model is not asked
to move a counterfactual along a feature it may not change. A counterfactual whose search
did not converge arrives as x'_CE = x⁺, so its divergence term is 0. Counterfactuals are
inputs: no gradient flows into the search that produced them.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from cfx._validate import float_dtype
from cfx.classifier import two_class_logits
from cfx.constraints import DECREASE, INCREASE, NONE
from cfx.models.losses import weighted_cross_entropy, weighted_mean
from cfx.models.step import Batch, TrainApply, TrainState, train_step
from cfx._reductions import pick_last


@struct.dataclass
class Counterfactuals:
    """m counterfactual slots for one batch (or one epoch before splitting).

    Attributes:
      x_ce: (m, d) mature counterfactuals (x⁺ where the search did not converge).
      x_plus: (m, d) a random training point of the target class y⁺.
      y_plus: (m,) int target classes.
      x_ae: (m, d) nascent counterfactuals: last iterate within the ε-ball (else the factual).
      y_ae: (m,) int the factuals' true labels.
      w: (m,) slot weights (0: padding).
      mature: (m,) bool, the search converged.
      x: (m, d) the factuals.
    """

    x_ce: jax.Array
    x_plus: jax.Array
    y_plus: jax.Array
    x_ae: jax.Array
    y_ae: jax.Array
    w: jax.Array
    mature: jax.Array
    x: jax.Array

    @classmethod
    def empty(cls, m: int, d: int) -> "Counterfactuals":
        """m zero-weight slots (a batch without counterfactuals)."""
        z = jnp.zeros((m, d), float_dtype())
        i = jnp.zeros((m,), jnp.int32)
        return cls(z, z, i, z, i, jnp.zeros((m,), float_dtype()), jnp.zeros((m,), bool), z)


@struct.dataclass
class CTWeights:
    """The loss's array leaves: λ values and per-feature mutability codes (changing them
    never recompiles). ``mutability`` (d,) uses :data:`cfx.constraints.MUTABILITY` codes."""

    ce: jax.Array
    div: jax.Array
    reg: jax.Array
    adv: jax.Array
    mutability: jax.Array

    @classmethod
    def create(cls, weights, mutability) -> "CTWeights":
        """Array leaves from (λ_ce, λ_div, λ_reg, λ_adv) and mutability codes (d,)."""
        ce, div, reg, adv = (jnp.asarray(w, float_dtype()) for w in weights)
        return cls(ce, div, reg, adv, jnp.asarray(mutability, jnp.int32))


def protect(x_plus: jax.Array, x_cf: jax.Array, mutability: jax.Array) -> jax.Array:
    """x̃⁺: protected features of x⁺ set from x' (immutable: x'_d; increase: max; decrease: min)."""
    out = jnp.where(mutability == INCREASE, jnp.maximum(x_plus, x_cf), x_plus)
    out = jnp.where(mutability == DECREASE, jnp.minimum(x_plus, x_cf), out)
    return jnp.where(mutability == NONE, x_cf, out)


def ct_loss(
    params: Any,
    batch: Batch,
    counterfactuals: Counterfactuals,
    key: jax.Array,
    *,
    apply: TrainApply,
    weights: CTWeights,
) -> tuple[jax.Array, dict]:
    """The CT objective of one batch (see the module docstring) -> (L, aux metrics).

    One forward pass over [x; x̃⁺; x'_CE; x'_AE] (B + 3m rows) in training mode (``key``
    feeds dropout). Aux: ``ce``, ``div``, ``reg``, ``adv`` (unweighted) and ``mature_share``.
    """
    cf = jax.tree_util.tree_map(jax.lax.stop_gradient, counterfactuals)
    B, m = batch.x.shape[0], cf.x_ce.shape[0]
    x_plus = protect(cf.x_plus, cf.x_ce, weights.mutability)
    logits = two_class_logits(apply(params, jnp.concatenate([batch.x, x_plus, cf.x_ce, cf.x_ae]), key))
    f_x, f_plus, f_ce, f_ae = logits[:B], logits[B : B + m], logits[B + m : B + 2 * m], logits[B + 2 * m :]
    ce = weighted_cross_entropy(f_x, batch.y, batch.w)
    g_plus, g_ce = pick_last(f_plus, cf.y_plus), pick_last(f_ce, cf.y_plus)
    div = weighted_mean(g_ce - g_plus, cf.w)  # E(x̃⁺) − E(x'_CE) = −f(x̃⁺) + f(x'_CE)
    reg = weighted_mean(g_plus**2 + g_ce**2, cf.w)
    adv = weighted_cross_entropy(f_ae, cf.y_ae, cf.w)
    loss = weights.ce * ce + weights.div * div + weights.reg * reg + weights.adv * adv
    aux = {
        "ce": ce,
        "div": div,
        "reg": reg,
        "adv": adv,
        "mature_share": weighted_mean(cf.mature.astype(jnp.float32), cf.w),
    }
    return loss, aux


def _step(
    state: TrainState,
    batch: Batch,
    counterfactuals: Counterfactuals,
    key: jax.Array,
    *,
    weights: CTWeights,
    apply: TrainApply,
    tx: optax.GradientTransformation,
) -> tuple[TrainState, dict]:
    """The un-jitted step: :func:`cfx.models.train_step` with the CT loss of this batch."""

    def loss_fn(params, batch, key, *, apply, extra):
        loss, aux = ct_loss(params, batch, counterfactuals, key, apply=apply, weights=weights)
        return loss, (extra, aux)

    return train_step(state, batch, key, apply=apply, loss_fn=loss_fn, tx=tx)


@functools.partial(jax.jit, static_argnames=("apply", "tx"))
def ct_train_step(
    state: TrainState,
    batch: Batch,
    counterfactuals: Counterfactuals,
    key: jax.Array,
    *,
    weights: CTWeights,
    apply: TrainApply,
    tx: optax.GradientTransformation,
) -> tuple[TrainState, dict]:
    """One optimiser step on :func:`ct_loss`: pure and jitted (``apply`` and ``tx`` static;
    the state, batch, counterfactuals and λ are traced, so new values never recompile).

    Example::

        state, metrics = ct_train_step(state, Batch(x, y, w), cfs, key, weights=CTWeights.create(
            (1.0, 0.5, 0.1, 0.25), np.zeros(d)), apply=module_apply.train_logits, tx=optax.adam(1e-3))
    """
    return _step(state, batch, counterfactuals, key, weights=weights, apply=apply, tx=tx)

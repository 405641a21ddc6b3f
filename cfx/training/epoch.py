"""The counterfactual step and the CT epoch, each one compiled call.

Counterfactual step (once per epoch, :func:`counterfactual_step`):

1. draw n_ce factuals without replacement from the training set;
2. y⁺ uniform over the classes other than the model's prediction: y⁺ = (ŷ + 1 + u) mod C,
   u ~ U{0, ..., C − 2}; x⁺ a uniformly drawn training point of class y⁺;
3. one batched ECCo search (:func:`cfx.search.search`, ≤ T steps, respecting the
   constraints) with the ``track_last_within(ε)`` hook, so the nascent counterfactual (the
   last iterate with ‖x_t − x‖_∞ ≤ ε, else the factual) costs O(n·d) memory, not a path;
4. mature x'_CE = the converged counterfactuals, x⁺ for the others.

Epoch (:func:`ct_epoch`): the counterfactual step with the current parameters (stopped
gradient), then a ``lax.scan`` of :func:`cfx.training.loss.ct_train_step` over shuffled,
padded mini-batches, the n_ce counterfactuals split evenly across them (zero-weight padding).
Every setting that changes a shape or the program (sizes, T, ε, the model) is static; data,
parameters, λ, the generator's weights and the constraints are traced.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from cfx._validate import float_dtype
from cfx.classifier import Classifier
from cfx.constraints import ResolvedConstraints
from cfx.generators.eccco import ECCo
from cfx.models.step import Batch, TrainState, shuffled_batches
from cfx.search import search
from cfx.search import track_last_within
from cfx.training.loss import Counterfactuals, CTWeights, _step

SEARCH_SHRINK = 4  # the search shrinks in-program to n_ce/4, n_ce/16 running rows (docs/ct.md)


@struct.dataclass
class TrainingData:
    """The training set on the device plus a class index for drawing x⁺.

    ``order`` (N,) sorts rows by label; class c occupies ``order[start[c] : start[c] + count[c]]``.
    """

    X: jax.Array
    y: jax.Array
    order: jax.Array
    start: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, X, y, n_classes: int) -> "TrainingData":
        """The training set on the device with its class index (rows sorted by label)."""
        y = np.asarray(y, np.int32)
        order = np.argsort(y, kind="stable").astype(np.int32)
        count = np.bincount(y, minlength=n_classes).astype(np.int32)
        start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int32)
        return cls(
            jnp.asarray(X, float_dtype()), jnp.asarray(y), jnp.asarray(order), jnp.asarray(start), jnp.asarray(count)
        )


@dataclasses.dataclass(frozen=True)
class EpochSpec:
    """The static part of a CT epoch (hashable): what a new value of recompiles."""

    apply: Any  # ModuleApply: deterministic __call__ for the search, train_logits for training
    n_features: int
    n_classes: int
    batch_size: int
    n_ce: int
    max_steps: int
    epsilon: float
    tx: optax.GradientTransformation


def _draw(data: TrainingData, classifier: Classifier, key: jax.Array, n_ce: int):
    """Factual rows, their targets y⁺ and target-class samples x⁺ (see the module docstring)."""
    k_pick, k_target, k_plus = jax.random.split(key, 3)
    n_classes = classifier.n_classes
    idx = jax.random.permutation(k_pick, data.X.shape[0])[:n_ce]
    x = data.X[idx]
    pred = jnp.argmax(classifier.raw_logits(x), axis=-1)
    target = (pred + 1 + jax.random.randint(k_target, pred.shape, 0, n_classes - 1)) % n_classes
    u = jax.random.uniform(k_plus, pred.shape)
    count = jnp.maximum(data.count[target], 1)
    pos = data.start[target] + jnp.minimum((u * count).astype(jnp.int32), count - 1)
    return x, data.y[idx], target.astype(jnp.int32), data.X[data.order[pos]]


def _counterfactuals(params, data, key, generator, constraints, spec: EpochSpec):
    classifier = Classifier(
        spec.apply, jax.lax.stop_gradient(params), n_features=spec.n_features, n_classes=spec.n_classes
    )
    k_draw, k_search = jax.random.split(key)
    x, y_true, target, x_plus = _draw(data, classifier, k_draw, spec.n_ce)
    res = search(
        generator,
        classifier,
        x,
        target,
        key=k_search,
        constraints=constraints,
        max_steps=spec.max_steps,
        track=track_last_within(spec.epsilon),
        shrink=SEARCH_SHRINK,
    )
    mature = res.converged[:, 0]
    x_ce = jnp.where(mature[:, None], res.counterfactuals[:, 0], x_plus)
    cfs = Counterfactuals(
        x_ce=x_ce,
        x_plus=x_plus,
        y_plus=target,
        x_ae=res.track[0][:, 0],
        y_ae=y_true,
        w=jnp.ones((spec.n_ce,), float_dtype()),
        mature=mature,
        x=x,
    )
    info = {
        "mature_share": jnp.mean(mature.astype(jnp.float32)),
        "search_steps": jnp.mean(res.steps.astype(jnp.float32)),
        **_landing(x, res.counterfactuals[:, 0], mature, cfs.x_ae, constraints),
    }
    return cfs, info


def _landing(x, x_cf, mature, x_ae, constraints):
    """Where the epoch's counterfactuals land (docs/ct.md's diagnosis): ``box_share``, the share of
    mature ones with a feature on a face of the search box; ``box_distance``, their mean distance
    to the nearest finite face; ``cf_l1``, their mean L1 distance from the factual;
    ``nascent_moved``, the share of nascent ones that are not the factual itself."""
    lower, upper = constraints.lower, constraints.upper
    gap = jnp.minimum(
        jnp.where(jnp.isfinite(lower), x_cf - lower, jnp.inf), jnp.where(jnp.isfinite(upper), upper - x_cf, jnp.inf)
    )
    nearest = jnp.min(gap, axis=-1)
    m = mature.astype(jnp.float32)
    count = jnp.maximum(jnp.sum(m), 1.0)
    finite = jnp.isfinite(nearest)
    return {
        "box_share": jnp.sum(m * (nearest <= 1e-4)) / count,
        "box_distance": jnp.sum(jnp.where(finite, nearest, 0.0) * m) / jnp.maximum(jnp.sum(m * finite), 1.0),
        "cf_l1": jnp.sum(jnp.sum(jnp.abs(x_cf - x), axis=-1) * m) / count,
        "nascent_moved": jnp.mean(jnp.any(x_ae != x, axis=-1).astype(jnp.float32)),
    }


@functools.partial(jax.jit, static_argnames=("spec",))
def counterfactual_step(
    params, data: TrainingData, key: jax.Array, generator: ECCo, constraints: ResolvedConstraints, *, spec: EpochSpec
) -> tuple[Counterfactuals, dict]:
    """One epoch's n_ce counterfactuals (mature and nascent) as one compiled call.

    Returns (:class:`Counterfactuals` with n_ce rows, ``{"mature_share", "search_steps", "box_share",
    "box_distance", "cf_l1", "nascent_moved"}``).
    """
    return _counterfactuals(params, data, key, generator, constraints, spec)


def split(cfs: Counterfactuals, n_batches: int) -> Counterfactuals:
    """n_ce slots -> (n_batches, ⌈n_ce / n_batches⌉) per leaf, the tail padded with weight 0."""
    n = cfs.w.shape[0]
    per = -(-n // n_batches)
    pad = per * n_batches - n

    def chunk(a):
        filler = jnp.zeros((pad,) + a.shape[1:], a.dtype)
        return jnp.concatenate([a, filler]).reshape((n_batches, per) + a.shape[1:])

    return jax.tree_util.tree_map(chunk, cfs)


@functools.partial(jax.jit, static_argnames=("spec",))
def ct_epoch(
    state: TrainState,
    data: TrainingData,
    key: jax.Array,
    weights: CTWeights,
    generator: ECCo,
    constraints: ResolvedConstraints,
    *,
    spec: EpochSpec,
    epoch: jax.Array | int | None = None,
) -> tuple[TrainState, dict, Counterfactuals]:
    """The counterfactual step, then a scan of CT train steps over the shuffled mini-batches.

    Returns (state, metrics, the epoch's n_ce counterfactuals). Metrics: the weighted epoch
    means of the loss and its terms, ``mature_share`` and ``search_steps`` of the search, and
    ``finite`` (1 when every parameter is finite). With ``epoch`` (traced) the epoch's key
    is ``fold_in(key, epoch)``.
    """
    if epoch is not None:  # fold_in(key, epoch) in the program, not as an eager op per epoch
        key = jax.random.fold_in(key, epoch)
    k_cf, k_perm, k_steps = jax.random.split(key, 3)
    cfs, info = _counterfactuals(state.params, data, k_cf, generator, constraints, spec)
    idx, w = shuffled_batches(k_perm, data.X.shape[0], spec.batch_size)
    chunks = split(cfs, idx.shape[0])
    step = functools.partial(_step, weights=weights, apply=spec.apply.train_logits, tx=spec.tx)

    def body(state, inputs):
        i, wb, k, cf = inputs
        state, metrics = step(state, Batch(data.X[i], data.y[i], wb), cf, k)
        return state, (metrics, jnp.sum(wb))

    keys = jax.random.split(k_steps, idx.shape[0])
    state, (metrics, batch_w) = jax.lax.scan(body, state, (idx, w, keys, chunks))
    metrics = jax.tree_util.tree_map(lambda m: jnp.sum(m * batch_w) / jnp.sum(batch_w), metrics)
    metrics.pop("mature_share", None)  # the search's share (below) is the epoch's
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree_util.tree_leaves(state.params)]))
    return state, {**metrics, **info, "finite": finite.astype(jnp.float32)}, cfs

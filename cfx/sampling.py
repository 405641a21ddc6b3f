"""SGLD samplers over batches of chains, a replay buffer, and class-conditional samples.

All functions are pure and traceable. An *energy* is ``energy_fn(x, *args) -> (B,)``
for chains ``x`` (B, d), one energy per chain (rows must not interact); ``energy_fn``
is static (hashable), ``args`` a PyTree of arrays (e.g. model parameters, labels), so
new parameters never recompile. The class-conditional energy of a classifier with
logits f is ``E(x|y) = −f_y(x)`` (SPEC §2, §3).

Rules (SPEC §3):

- ``"improper"`` (ECCCo's "improper SGLD", the default):
  ``x ← clamp(x − clip(∇E(x), ±c) + σ·ε, lb, ub)``, ε ~ N(0, I), c = σ = 0.01.
- ``"jem"`` (original JEM): ``x ← x + η·∇f(x) + σ·ε`` with ``f = −E``, η = 1, σ = 0.01;
  f is ``logsumexp_y f_y(x)`` for unconditional sampling (``E(x) = −logsumexp f(x)``)
  and ``f_y(x)`` for class-conditional sampling (``E(x|y) = −f_y(x)``); the caller
  chooses by the energy it passes. Clamped only when bounds are given.

Example::

    energy = lambda x, w: jnp.sum((x - w) ** 2, axis=-1)
    x, info = cfx.sampling.sgld(energy, x0, key, steps=200, lower=lb, upper=ub, args=(w,))
    info.reset_share      # share of chains reset after a non-finite energy or gradient
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from cfx._validate import as_float, float_dtype, prng_key, real, samples
from cfx.classifier import Classifier
from cfx._reductions import pick_last
from cfx._sgld import RULES, EnergyFn, SGLDInfo, improper_sgld_step, jem_sgld_step, sgld


__all__ = [
    "EnergyFn",
    "RULES",
    "SGLDInfo",
    "bounds",
    "conditional_samples",
    "improper_sgld_step",
    "jem_sgld_step",
    "per_target_samples",
    "replay_buffer",
    "ReplayBuffer",
    "sample",
    "scalar_bounds",
    "sgld",
    "update",
]


# ----------------------------------------------------------------------------------
# replay buffer
# ----------------------------------------------------------------------------------


def bounds(X, n_std: float = 3.0) -> tuple[jax.Array, jax.Array]:
    """Per-feature sampling box ``(μ − n_std·σ, μ + n_std·σ)`` of data X (n, d) (SPEC §3: 3σ)."""
    X = np.asarray(X, np.float64)
    if X.ndim != 2 or X.shape[0] < 1:
        raise ValueError(f"X must have shape (n, d) with n >= 1; got {X.shape}")
    mu, sd = X.mean(axis=0), X.std(axis=0)
    return jnp.asarray(mu - n_std * sd, float_dtype()), jnp.asarray(mu + n_std * sd, float_dtype())


@struct.dataclass
class ReplayBuffer:
    """Persistent SGLD chains, ``per_class`` slots for each of C classes (a PyTree).

    Attributes:
      x: (C·K, d) stored points; slots ``c·K … c·K + K − 1`` belong to class c.
      y: (C·K,) int32 class of each slot.
      lower, upper: (d,) bounds of the re-initialisation box U(lower, upper).
      reinit_prob: scalar, probability that a draw starts afresh from U(lower, upper).
      per_class: K (static).
    """

    x: jax.Array
    y: jax.Array
    lower: jax.Array
    upper: jax.Array
    reinit_prob: jax.Array
    per_class: int = struct.field(pytree_node=False, default=1)

    @property
    def capacity(self) -> int:
        """Slots in the buffer (all classes together)."""
        return int(self.x.shape[-2])

    @property
    def n_classes(self) -> int:
        """The number of classes (capacity / per_class)."""
        return self.capacity // self.per_class


def _uniform(key, shape, lower, upper) -> jax.Array:
    return lower + (upper - lower) * jax.random.uniform(key, shape, jnp.float32)


def replay_buffer(
    lower, upper, *, key: jax.Array, n_classes: int, capacity: int = 10_000, reinit_prob: float = 0.05
) -> ReplayBuffer:
    """A buffer of ``C·⌊capacity / C⌋`` points drawn from U(lower, upper), equal slots per class.

    Args:
      lower, upper: (d,) box, usually :func:`bounds` of the training data (μ ± 3σ).
      key: PRNG key of the initial points. n_classes: C.
      capacity: total size (SPEC §3: 10,000); rounded down to a multiple of C.
      reinit_prob: re-initialisation probability per draw (SPEC §3: 0.05).
    """
    if not (isinstance(n_classes, (int, np.integer)) and n_classes >= 1):
        raise ValueError(f"n_classes must be an int >= 1; got {n_classes!r}")
    per_class = int(capacity) // int(n_classes)
    if per_class < 1:
        raise ValueError(f"capacity {capacity} is smaller than n_classes {n_classes}")
    if not 0.0 <= reinit_prob <= 1.0:
        raise ValueError(f"reinit_prob must be in [0, 1]; got {reinit_prob!r}")
    lower, upper = jnp.asarray(lower, float_dtype()), jnp.asarray(upper, float_dtype())
    n = per_class * int(n_classes)
    return ReplayBuffer(
        x=_uniform(key, (n, lower.shape[-1]), lower, upper),
        y=jnp.repeat(jnp.arange(n_classes, dtype=jnp.int32), per_class),
        lower=lower,
        upper=upper,
        reinit_prob=as_float(reinit_prob),
        per_class=per_class,
    )


def sample(buffer: ReplayBuffer, key: jax.Array, n: int, y: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Draw n chain starts: ``(x0 (n, d), idx (n,))``.

    Slot indices are uniform over the whole buffer, or over class ``y_i``'s slots when
    labels ``y`` (n,) are given; each start is replaced by a fresh U(lower, upper) point
    with probability ``reinit_prob``. Write the advanced chains back with :func:`update`.
    """
    k_idx, k_re, k_u = jax.random.split(key, 3)
    if y is None:
        idx = jax.random.randint(k_idx, (n,), 0, buffer.capacity)
    else:
        idx = jnp.asarray(y, jnp.int32) * buffer.per_class + jax.random.randint(k_idx, (n,), 0, buffer.per_class)
    fresh = jax.random.uniform(k_re, (n,)) < buffer.reinit_prob
    x0 = jnp.where(fresh[:, None], _uniform(k_u, (n, buffer.x.shape[-1]), buffer.lower, buffer.upper), buffer.x[idx])
    return x0, idx


def update(buffer: ReplayBuffer, idx: jax.Array, x: jax.Array) -> ReplayBuffer:
    """The buffer with rows ``idx`` (n,) replaced by ``x`` (n, d) (one of duplicates wins)."""
    return buffer.replace(x=buffer.x.at[idx].set(x.astype(buffer.x.dtype)))


# ----------------------------------------------------------------------------------
# class-conditional samples of a classifier (unfaithfulness, SPEC §4)
# ----------------------------------------------------------------------------------


def _class_energy(x: jax.Array, classifier: Classifier, y: jax.Array) -> jax.Array:
    """E(x_i | y_i) = −f_{y_i}(x_i) per chain."""
    return -pick_last(classifier.raw_logits(x), y)


@functools.partial(jax.jit, static_argnames=("n_chains", "steps", "keep"))
def _conditional_samples(classifier, lower, upper, key, grad_clip, noise_scale, *, n_chains, steps, keep):
    c = classifier.n_classes
    k0, k_run = jax.random.split(key)
    y = jnp.repeat(jnp.arange(c, dtype=jnp.int32), n_chains)
    x0 = _uniform(k0, (c * n_chains, lower.shape[-1]), lower, upper)
    x, info = sgld(
        _class_energy,
        x0,
        k_run,
        steps=steps,
        rule="improper",
        lower=lower,
        upper=upper,
        grad_clip=grad_clip,
        noise_scale=noise_scale,
        args=(classifier, y),
    )
    x, e = x.reshape(c, n_chains, -1), info.energy.reshape(c, n_chains)
    order = jnp.argsort(e, axis=1)[:, :keep]
    return jnp.take_along_axis(x, order[:, :, None], axis=1)


def _check_chains(classifier, n_chains, steps, keep) -> None:
    """The checks every conditional sampler makes before tracing: a Classifier, int sizes >= 1, keep <= n_chains."""
    if not isinstance(classifier, Classifier):
        raise TypeError(f"classifier must be a cfx.Classifier; got {type(classifier).__name__}")
    for name, v in (("n_chains", n_chains), ("steps", steps), ("keep", keep)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an int >= 1; got {v!r}")
    if keep > n_chains:
        raise ValueError(f"keep ({keep}) must be <= n_chains ({n_chains})")


def _check_sampler(classifier, data, key, grad_clip, noise_scale, n_std):
    """The data rows (finite, the classifier's width) and the key, after checking the
    sampler's numbers (grad_clip, noise_scale, n_std: finite, >= 0 / > 0)."""
    X = samples("data", getattr(data, "X", data), width=classifier.n_features)
    real("grad_clip", grad_clip, low=0.0, open_low=True)
    real("noise_scale", noise_scale, low=0.0)
    real("n_std", n_std, low=0.0, open_low=True)
    return X, prng_key(key)


def conditional_samples(
    classifier: Classifier,
    data: Any,
    *,
    key: jax.Array,
    n_chains: int = 50,
    steps: int = 500,
    keep: int = 25,
    grad_clip: float = 0.01,
    noise_scale: float = 0.01,
    n_std: float = 3.0,
) -> jax.Array:
    """Samples of the model's conditional ``p_θ(x|y) ∝ exp(−E(x|y))``, ``E(x|y) = −f_y(x)``: (C, keep, d).

    For every class y at once (one compiled batch of C·n_chains chains): start n_chains
    chains from U(lb, ub) with lb/ub = μ ± n_std·σ of ``data``, run ``steps`` improper-SGLD
    steps clamped to [lb, ub], keep the ``keep`` lowest-energy final samples per class
    (SPEC §4: 50 chains × 500 steps, 25 kept). Deterministic given ``key``; new
    parameters of the same model reuse the compiled sampler.

    Args:
      classifier: a :class:`cfx.Classifier` (ensembles: f = its averaged-probability logits).
      data: a Dataset (its ``X``) or an array (n, d) giving the bounds.
      key: PRNG key. n_chains, steps, keep: see above (``keep <= n_chains``).

    Example::

        S = cfx.sampling.conditional_samples(clf, train, key=jax.random.key(0))
        ctx = cfx.evaluation.context(clf, train, conditional_samples=S)
    """
    _check_chains(classifier, n_chains, steps, keep)
    X, key = _check_sampler(classifier, data, key, grad_clip, noise_scale, n_std)
    lower, upper = bounds(X, n_std)
    return _conditional_samples(
        classifier,
        lower,
        upper,
        key,
        as_float(grad_clip),
        as_float(noise_scale),
        n_chains=int(n_chains),
        steps=int(steps),
        keep=int(keep),
    )


# ----------------------------------------------------------------------------------
# the ECCCo reference's sampler: fresh samples per counterfactual (ECCCo.jl, JointEnergyModels.jl 0.1.3)
# ----------------------------------------------------------------------------------


def scalar_bounds(X, n_std: float = 3.0) -> tuple[float, float]:
    """One box for every feature: ``(min_j μ_j − n_std·σ_j, max_j μ_j + n_std·σ_j)`` of X (n, d)
    (ECCCo.jl's ``prior_sampling_space``: a scalar ``Uniform`` over all features)."""
    lower, upper = bounds(X, n_std)
    return float(jnp.min(lower)), float(jnp.max(upper))


def _mean_class_energy(x: jax.Array, classifier: Classifier, y: jax.Array, n_chains) -> jax.Array:
    """−f_{y_i}(x_i) / n: each chain's share of the *batch-mean* energy, whose gradient the
    reference clips (so a chain's gradient is divided by the number of chains first)."""
    return -pick_last(classifier.raw_logits(x), y) / n_chains


@functools.partial(jax.jit, static_argnames=("n_chains", "steps", "keep"))
def _per_target_samples(
    classifier, targets, lower, upper, key, fresh_prob, grad_clip, noise_scale, *, n_chains, steps, keep
):
    m, d = targets.shape[0], classifier.n_features
    k_start, k_fresh, k_mask, k_run = jax.random.split(key, 4)
    start = jax.random.uniform(k_start, (m, 1, d), jnp.float32, lower, upper).astype(float_dtype())  # buffer's point
    fresh = jax.random.uniform(k_fresh, (m, n_chains, d), jnp.float32, lower, upper).astype(float_dtype())
    is_fresh = jax.random.uniform(k_mask, (m, n_chains, 1)) < fresh_prob
    x0 = jnp.where(is_fresh, fresh, start).reshape(m * n_chains, d)
    y = jnp.repeat(targets.astype(jnp.int32), n_chains)
    x, _ = sgld(
        _mean_class_energy,
        x0,
        k_run,
        steps=steps,
        rule="improper",
        grad_clip=grad_clip,
        noise_scale=noise_scale,
        args=(classifier, y, as_float(n_chains)),
    )
    x = jnp.clip(x, lower, upper)  # clamped once, after the chains ran unbounded
    neg_log_p = -pick_last(jax.nn.log_softmax(classifier.raw_logits(x), axis=-1), y)
    neg_log_p = jnp.where(jnp.isfinite(neg_log_p), neg_log_p, jnp.inf).reshape(m, n_chains)
    order = jnp.argsort(neg_log_p, axis=1)[:, :keep]
    return jnp.take_along_axis(x.reshape(m, n_chains, d), order[:, :, None], axis=1)


def per_target_samples(
    classifier: Classifier,
    data: Any,
    targets,
    *,
    key: jax.Array,
    n_chains: int = 50,
    steps: int = 500,
    keep: int = 25,
    fresh_prob: float = 0.05,
    grad_clip: float = 0.01,
    noise_scale: float = 0.01,
    n_std: float = 3.0,
) -> jax.Array:
    """The ECCCo reference's conditional samples, drawn afresh for every target: (m, keep, d).

    For each of the m targets y_i (one per counterfactual), as ECCCo.jl's ``EnergySampler``
    with JointEnergyModels.jl 0.1.3's ``ConditionalSampler`` does:

    - the box U(lb, ub) is one interval for all features (:func:`scalar_bounds`, μ ± n_std·σ);
    - the sampler's buffer holds one uniform point u_i; each of the ``n_chains`` chains
      starts fresh from U(lb, ub)^d with probability ``fresh_prob`` (0.05), else at u_i;
    - ``steps`` improper-SGLD steps on the *batch-mean* energy (1/n) Σ_j −f_{y_i}(x_j):
      x_j ← x_j − clip(−∇f_{y_i}(x_j)/n, ±grad_clip) + noise_scale·ε, unbounded, then one
      clamp to [lb, ub];
    - the ``keep`` chains of lowest −log p(y_i|x) (the probability output, not −f_y) are kept.

    cfx's :func:`conditional_samples` instead draws once per class, clips the per-chain
    gradient, clamps every step and ranks by −f_y. All m·n_chains chains run in one compiled
    batch; new parameters or targets of the same shape reuse it.
    """
    _check_chains(classifier, n_chains, steps, keep)
    real("fresh_prob", fresh_prob, low=0.0, high=1.0)
    t = np.asarray(targets)
    if (
        t.ndim != 1
        or not np.issubdtype(t.dtype, np.integer)
        or (t.size and (t.min() < 0 or t.max() >= classifier.n_classes))
    ):
        raise ValueError(f"targets must be a 1-D array of class labels in [0, {classifier.n_classes}); got {targets!r}")
    X, key = _check_sampler(classifier, data, key, grad_clip, noise_scale, n_std)
    lower, upper = scalar_bounds(X, n_std)
    return _per_target_samples(
        classifier,
        jnp.asarray(t, jnp.int32),
        as_float(lower),
        as_float(upper),
        key,
        as_float(fresh_prob),
        as_float(grad_clip),
        as_float(noise_scale),
        n_chains=int(n_chains),
        steps=int(steps),
        keep=int(keep),
    )

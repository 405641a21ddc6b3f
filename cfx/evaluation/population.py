"""Metrics of a whole population (a model on labelled data, a set of counterfactuals against
samples of the data): counterfactual training's (SPEC §5) and accuracy, each registered at
level ``"population"`` (computed by the code that holds the population, not by ``cfx.evaluate``).

- ``ip`` (:func:`ip`): CT's IP, the mean L1 distance from x' to (up to) ``n_samples`` training
  points of its target class, (1/S) Σ_s ‖x' − x_s‖₁ (not ``implausibility``: L2 to the nearest);
- ``ip_star`` (:func:`ip_star`): IP*, the unbiased MMD² (:func:`cfx.evaluation.mmd.mmd2`) between
  counterfactuals and target-class samples (≤ 100 each, per target class, averaged with weights
  by count), Gaussian kernel, ℓ = 0.5 (paper) / 5.0 (code);
- ``cost`` (:func:`cost`): mean L1 distance of the valid counterfactuals, over all features or a subset;
- ``sensitivity`` (:func:`protected_sensitivity`): the share Σ_{j∈P} |IG_j| / Σ_j |IG_j| of the
  integrated-gradients attribution IG_j = (x_j − b_j)·(1/S) Σ_s ∂f_ŷ(b + (s/S)(x − b))/∂x_j
  carried by the protected features P (:func:`integrated_gradients`);
- ``accuracy`` (:func:`accuracy`, the formula :func:`accuracy_of`), and ``fgsm`` / ``pgd``
  (:func:`robust_accuracy`: FGSM and PGD, 40 steps of size 0.01 from a uniform random start,
  projected onto the L∞ ball) over a grid of ε.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cfx.classifier import Classifier
from cfx.evaluation.mmd import mmd2
from cfx.evaluation.registry import Metric, register
from cfx.models.train import accuracy, accuracy_of  # the one accuracy formula lives with the models

__all__ = [
    "sample_bank",
    "ip",
    "ip_star",
    "cost",
    "integrated_gradients",
    "protected_sensitivity",
    "accuracy",
    "accuracy_of",
    "logit_accuracy",
    "robust_accuracy",
]

_ROWS = 256  # rows per lax.map chunk: bounds the (chunk, S, d) distance tensor


def sample_bank(X, y, n_classes: int, n_samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n_samples`` random rows per class: bank (C, S, d) and mask (C, S) (host, seeded)."""
    X, y = np.asarray(X, np.float32), np.asarray(y)
    rng = np.random.default_rng(seed)
    bank = np.zeros((n_classes, n_samples, X.shape[1]), np.float32)
    mask = np.zeros((n_classes, n_samples), bool)
    for c in range(n_classes):
        idx = rng.permutation(np.flatnonzero(y == c))[:n_samples]
        bank[c, : len(idx)], mask[c, : len(idx)] = X[idx], True
    return bank, mask


@jax.jit
def _ip(cf, target, bank, mask):
    def one(args):
        q, t = args
        dist = jnp.sum(jnp.abs(bank[t] - q), axis=-1)
        return jnp.sum(jnp.where(mask[t], dist, 0.0)) / jnp.maximum(jnp.sum(mask[t]), 1)

    return jax.lax.map(one, (cf, target), batch_size=_ROWS)


def ip(cf, target, bank, mask) -> np.ndarray:
    """CT's IP per counterfactual (m,): (1/S) Σ_s ‖x' − x_s‖₁ over the S target-class samples of
    ``bank`` (:func:`sample_bank`). Not ``implausibility`` (L2 to the nearest target points)."""
    return np.asarray(
        _ip(jnp.asarray(cf, jnp.float32), jnp.asarray(target, jnp.int32), jnp.asarray(bank), jnp.asarray(mask))
    )


def _per_class_sets(cf, target, bank, mask, size: int, seed: int):
    """For each target class present: (cf set (size, d), its mask, samples (size, d), mask, count)."""
    rng = np.random.default_rng(seed)
    out = []
    for c in np.unique(target):
        idx = rng.permutation(np.flatnonzero(target == c))[:size]
        a = np.zeros((size, cf.shape[1]), np.float32)
        wa = np.zeros(size, np.float32)
        a[: len(idx)], wa[: len(idx)] = cf[idx], 1.0
        b, wb = bank[c, :size], mask[c, :size].astype(np.float32)
        out.append((a, wa, b, wb, len(idx)))
    return out


def ip_star(
    cf, target, bank, mask, *, length_scale: float = 0.5, size: int = 100, seed: int = 0, n_boot: int = 0
) -> tuple[float, np.ndarray]:
    """IP*: per target class the unbiased MMD² of ≤ ``size`` counterfactuals vs ≤ ``size``
    samples, averaged with weights by count. Returns (IP*, ``n_boot`` bootstrap replicates,
    resampling the counterfactuals of every class; an empty array when ``n_boot = 0``)."""
    cf, target = np.asarray(cf, np.float32), np.asarray(target)
    sets = _per_class_sets(cf, target, np.asarray(bank), np.asarray(mask), size, seed)
    counts = np.array([s[4] for s in sets], np.float64)
    ls = jnp.float32(length_scale)
    value = sum(c * float(mmd2(a, b, wa, wb, ls)) for (a, wa, b, wb, _), c in zip(sets, counts)) / counts.sum()
    if n_boot <= 0:
        return float(value), np.zeros(0)
    rng = np.random.default_rng(seed + 1)
    boot = np.zeros(n_boot)
    for (a, wa, b, wb, k), c in zip(sets, counts):
        draws = np.stack([np.bincount(rng.integers(0, k, k), minlength=len(wa)) for _ in range(n_boot)])
        boot += c * np.asarray(_boot_mmd(a, b, jnp.asarray(draws, jnp.float32), wb, ls))
    return float(value), boot / counts.sum()


@jax.jit
def _boot_mmd(a, b, wa_draws, wb, ls):
    return jax.vmap(lambda wa: mmd2(a, b, wa, wb, ls))(wa_draws)


@jax.jit
def _cost(x, cf, valid, features):
    per = jnp.sum(jnp.abs(cf - x) * features, axis=-1)
    n = jnp.sum(valid)
    return jnp.where(n > 0, jnp.sum(jnp.where(valid, per, 0.0)) / jnp.maximum(n, 1), jnp.nan)


def cost(x, cf, valid, features=None) -> float:
    """Mean L1 distance ‖x' − x‖₁ over the valid counterfactuals (over ``features`` only, if
    given); NaN when none is valid."""
    x = jnp.asarray(x, jnp.float32)
    mask = jnp.ones(x.shape[-1], jnp.float32)
    if features is not None:
        mask = jnp.zeros(x.shape[-1], jnp.float32).at[jnp.asarray(list(features), jnp.int32)].set(1.0)
    return float(_cost(x, jnp.asarray(cf, jnp.float32), jnp.asarray(valid, bool), mask))


@functools.partial(jax.jit, static_argnames=("steps",))
def integrated_gradients(classifier: Classifier, x, baseline, *, steps: int = 50):
    """IG (n, d) of the predicted-class logit f_ŷ from ``baseline`` (d,) to each row of x (n, d)."""
    pred = jnp.argmax(classifier.raw_logits(x), axis=-1)
    alphas = (jnp.arange(steps, dtype=jnp.float32) + 0.5) / steps  # midpoint rule

    def one(xi, yi):
        grad = jax.grad(lambda z: classifier.raw_logits(z)[yi])
        path = baseline + alphas[:, None] * (xi - baseline)
        return (xi - baseline) * jnp.mean(jax.vmap(grad)(path), axis=0)

    return jax.lax.map(lambda args: one(*args), (x, pred), batch_size=_ROWS)


def protected_sensitivity(classifier: Classifier, x, protected, baseline=None, *, steps: int = 50) -> float:
    """Mean over rows of Σ_{j∈P} |IG_j| / Σ_j |IG_j|: the attribution share of the protected features."""
    x = jnp.asarray(x, jnp.float32)
    base = jnp.zeros(x.shape[1], jnp.float32) if baseline is None else jnp.asarray(baseline, jnp.float32)
    ig = np.abs(np.asarray(integrated_gradients(classifier, x, base, steps=steps)))
    total = ig.sum(-1)
    share = ig[:, list(protected)].sum(-1) / np.where(total > 0, total, 1.0)
    return float(share.mean())


@jax.jit
def _logit_accuracy(classifier, x, y):
    return accuracy_of(jnp.argmax(classifier.raw_logits(x), axis=-1), y)


def logit_accuracy(classifier: Classifier, x, y) -> float:
    """mean(argmax f(x) == y) in one compiled float32 call on the raw logits (CT's evaluation)."""
    return float(_logit_accuracy(classifier, jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)))


def _input_grad(classifier, x, y):
    loss = lambda z: jnp.sum(optax.softmax_cross_entropy_with_integer_labels(classifier.raw_logits(z), y))
    return jax.grad(loss)(x)


@functools.partial(jax.jit, static_argnames=("steps",))
def _robust(classifier, x, y, eps, key, step_size, *, steps: int):
    def at(e, k):
        fgsm = x + e * jnp.sign(_input_grad(classifier, x, y))
        start = x + jax.random.uniform(k, x.shape, minval=-1.0, maxval=1.0) * e

        def body(z, _):
            z = z + step_size * jnp.sign(_input_grad(classifier, z, y))
            return jnp.clip(z, x - e, x + e), None

        pgd, _ = jax.lax.scan(body, start, None, length=steps)
        acc = lambda z: accuracy_of(jnp.argmax(classifier.raw_logits(z), axis=-1), y)
        return acc(fgsm), acc(pgd)

    return jax.vmap(at)(eps, jax.random.split(key, eps.shape[0]))


def robust_accuracy(
    classifier: Classifier, x, y, eps, *, key, steps: int = 40, step_size: float = 0.01
) -> dict[str, np.ndarray]:
    """Accuracy under FGSM (x + ε·sign ∇_x CE) and PGD (``steps`` signed steps of ``step_size``
    from x + U(−ε, ε), projected onto ‖z − x‖_∞ ≤ ε) for every ε of ``eps``.
    Returns ``{"eps", "fgsm", "pgd"}`` arrays of len(eps)."""
    eps = jnp.asarray(eps, jnp.float32)
    fgsm, pgd = _robust(
        classifier,
        jnp.asarray(x, jnp.float32),
        jnp.asarray(y, jnp.int32),
        eps,
        key,
        jnp.float32(step_size),
        steps=int(steps),
    )
    return {"eps": np.asarray(eps), "fgsm": np.asarray(fgsm), "pgd": np.asarray(pgd)}


for _name, _fn, _desc in (
    (
        "ip",
        ip,
        "CT: mean L1 distance from x' to (up to ip_samples) training points of its target class; "
        "was CT's 'implausibility' (not the kNN-L2 implausibility)",
    ),
    (
        "ip_star",
        ip_star,
        "CT IP*: unbiased Gaussian-kernel MMD² between the valid counterfactuals and target-class "
        "samples, per target class, weighted by count",
    ),
    ("cost", cost, "CT: mean L1 distance ||x' - x||_1 over the valid counterfactuals (NaN when none is valid)"),
    (
        "sensitivity",
        protected_sensitivity,
        "CT: share of the integrated-gradients attribution carried by the protected features",
    ),
    ("accuracy", accuracy, "share of test points whose predicted label is the true one, mean(argmax f(x) == y)"),
    ("fgsm", robust_accuracy, "accuracy under an FGSM attack of L-inf size eps (reported per eps as fgsm_<eps>)"),
    ("pgd", robust_accuracy, "accuracy under a PGD attack of L-inf size eps (reported per eps as pgd_<eps>)"),
):
    register(Metric(_name, _fn, level="population", description=_desc))

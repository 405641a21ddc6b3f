"""Evaluation of counterfactually trained models (SPEC §5), every computation jitted and batched.

- :func:`implausibility`: IP per counterfactual, the mean L1 distance from x' to (up to)
  ``n_samples`` training points of its target class, (1/S) Σ_s ‖x' − x_s‖₁;
- :func:`mmd2` / :func:`ip_star`: IP*, the unbiased MMD² between counterfactuals and
  target-class samples (≤ 100 each, per target class, averaged with weights by count),
  Gaussian kernel k(a, b) = exp(−‖a − b‖² / (2ℓ²)), ℓ = 0.5 (paper) / 5.0 (code);
- :func:`cost`: mean L1 distance of the valid counterfactuals, over all features or a subset;
- :func:`integrated_gradients` / :func:`protected_sensitivity`: IG attributions of the
  predicted-class logit, IG_j = (x_j − b_j)·(1/S) Σ_s ∂f_ŷ(b + (s/S)(x − b))/∂x_j, and the
  share Σ_{j∈P} |IG_j| / Σ_j |IG_j| carried by the protected features P;
- :func:`accuracy`, :func:`robust_accuracy` (FGSM and PGD: 40 steps of size 0.01 from a
  uniform random start, projected onto the L∞ ball) over a grid of ε;
- :func:`reduction_ci`: % reduction of a mean (CT vs baseline) with a bootstrap interval.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cfx.classifier import Classifier

_ROWS = 256  # rows per lax.map chunk: bounds the (chunk, S, d) distance tensor


def sample_bank(X, y, n_classes: int, n_samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n_samples`` random rows per class: bank (C, S, d) and mask (C, S) (host, seeded)."""
    X, y = np.asarray(X, np.float32), np.asarray(y)
    rng = np.random.default_rng(seed)
    bank = np.zeros((n_classes, n_samples, X.shape[1]), np.float32)
    mask = np.zeros((n_classes, n_samples), bool)
    for c in range(n_classes):
        idx = rng.permutation(np.flatnonzero(y == c))[:n_samples]
        bank[c, :len(idx)], mask[c, :len(idx)] = X[idx], True
    return bank, mask


@jax.jit
def _implausibility(cf, target, bank, mask):
    def one(args):
        q, t = args
        dist = jnp.sum(jnp.abs(bank[t] - q), axis=-1)
        return jnp.sum(jnp.where(mask[t], dist, 0.0)) / jnp.maximum(jnp.sum(mask[t]), 1)

    return jax.lax.map(one, (cf, target), batch_size=_ROWS)


def implausibility(cf, target, bank, mask) -> np.ndarray:
    """IP per counterfactual (m,): mean L1 distance to the target-class samples of ``bank``."""
    return np.asarray(_implausibility(jnp.asarray(cf, jnp.float32), jnp.asarray(target, jnp.int32),
                                      jnp.asarray(bank), jnp.asarray(mask)))


def _kernel(a, b, length_scale):
    d2 = jnp.sum(a * a, -1)[:, None] + jnp.sum(b * b, -1)[None, :] - 2.0 * a @ b.T
    return jnp.exp(-jnp.maximum(d2, 0.0) / (2.0 * length_scale ** 2))


@jax.jit
def mmd2(a, b, wa, wb, length_scale):
    """Unbiased MMD² between weighted sets a (n, d) and b (m, d) (weights: 0/1 masks or
    bootstrap counts; pairs i = j excluded within a set)."""
    def within(x, w):
        k = _kernel(x, x, length_scale)
        ww = w[:, None] * w[None, :] * (1.0 - jnp.eye(x.shape[0]))
        return jnp.sum(k * ww) / jnp.maximum(jnp.sum(ww), 1e-12)

    cross = jnp.sum(_kernel(a, b, length_scale) * wa[:, None] * wb[None, :]) / jnp.maximum(jnp.sum(wa) * jnp.sum(wb),
                                                                                            1e-12)
    return within(a, wa) + within(b, wb) - 2.0 * cross


def _per_class_sets(cf, target, bank, mask, size: int, seed: int):
    """For each target class present: (cf set (size, d), its mask, samples (size, d), mask, count)."""
    rng = np.random.default_rng(seed)
    out = []
    for c in np.unique(target):
        idx = rng.permutation(np.flatnonzero(target == c))[:size]
        a = np.zeros((size, cf.shape[1]), np.float32)
        wa = np.zeros(size, np.float32)
        a[:len(idx)], wa[:len(idx)] = cf[idx], 1.0
        b, wb = bank[c, :size], mask[c, :size].astype(np.float32)
        out.append((a, wa, b, wb, len(idx)))
    return out


def ip_star(cf, target, bank, mask, *, length_scale: float = 0.5, size: int = 100, seed: int = 0,
            n_boot: int = 0) -> tuple[float, np.ndarray]:
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
def _accuracy(classifier, x, y):
    return jnp.mean(jnp.argmax(classifier.raw_logits(x), axis=-1) == y)


def accuracy(classifier: Classifier, x, y) -> float:
    """mean(argmax f(x) == y)."""
    return float(_accuracy(classifier, jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)))


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
        acc = lambda z: jnp.mean(jnp.argmax(classifier.raw_logits(z), axis=-1) == y)
        return acc(fgsm), acc(pgd)

    return jax.vmap(at)(eps, jax.random.split(key, eps.shape[0]))


def robust_accuracy(classifier: Classifier, x, y, eps, *, key, steps: int = 40,
                    step_size: float = 0.01) -> dict[str, np.ndarray]:
    """Accuracy under FGSM (x + ε·sign ∇_x CE) and PGD (``steps`` signed steps of ``step_size``
    from x + U(−ε, ε), projected onto ‖z − x‖_∞ ≤ ε) for every ε of ``eps``.
    Returns ``{"eps", "fgsm", "pgd"}`` arrays of len(eps)."""
    eps = jnp.asarray(eps, jnp.float32)
    fgsm, pgd = _robust(classifier, jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32), eps, key,
                        jnp.float32(step_size), steps=int(steps))
    return {"eps": np.asarray(eps), "fgsm": np.asarray(fgsm), "pgd": np.asarray(pgd)}


def reduction_ci(baseline, treated, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95):
    """% reduction 100·(1 − mean(treated) / mean(baseline)) and its percentile bootstrap
    interval (both samples resampled independently). Returns (estimate, low, high)."""
    base, treat = np.asarray(baseline, np.float64), np.asarray(treated, np.float64)
    base, treat = base[np.isfinite(base)], treat[np.isfinite(treat)]
    if not len(base) or not len(treat):
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    b = base[rng.integers(0, len(base), (n_boot, len(base)))].mean(1)
    t = treat[rng.integers(0, len(treat), (n_boot, len(treat)))].mean(1)
    boot = 100.0 * (1.0 - t / b)
    lo, hi = np.percentile(boot, [50 * (1 - level), 100 - 50 * (1 - level)])
    return float(100.0 * (1.0 - treat.mean() / base.mean())), float(lo), float(hi)


def reduction_from_replicates(base_value, base_boot, treated_value, treated_boot, level: float = 0.95):
    """% reduction of a statistic with precomputed bootstrap replicates of both sides."""
    est = 100.0 * (1.0 - treated_value / base_value)
    boot = 100.0 * (1.0 - np.asarray(treated_boot) / np.asarray(base_boot))
    lo, hi = np.percentile(boot, [50 * (1 - level), 100 - 50 * (1 - level)])
    return float(est), float(lo), float(hi)


def select_factuals(classifier: Classifier, X, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """≤ n random rows of X with targets uniform over the classes other than the prediction."""
    rng = np.random.default_rng(seed)
    X = np.asarray(X, np.float32)
    idx = rng.permutation(len(X))[:n]
    pred = np.asarray(classifier.predict(X[idx]))
    C = int(classifier.n_classes)
    target = ((pred + 1 + rng.integers(0, C - 1, size=len(idx))) % C).astype(np.int32)
    return X[idx], target


def evaluate_model(classifier: Classifier, train, test, *, generator, constraints, protected, key,
                   n_factuals: int = 500, max_steps: int = 50, ip_samples: int = 1000, ip_star_size: int = 100,
                   length_scale: float = 0.5, eps=(0.0, 0.025, 0.05, 0.075, 0.1), pgd_steps: int = 40,
                   n_boot: int = 200, seed: int = 0) -> tuple[dict, dict]:
    """Every CT metric of one model: (scalars, arrays).

    Counterfactuals for ≤ ``n_factuals`` test points (targets uniform over the other classes)
    from one batched ``generator`` search under ``constraints``; IP and IP* use samples of the
    training split; IG uses the training mean as the baseline. Scalars: accuracy, validity,
    ip, ip_star, cost, cost_unprotected (cost without the protected features), sensitivity
    (IG share of the protected features), and robust accuracies per ε.
    """
    from cfx.search import generate  # the host wrapper: checks, compile cache

    x, target = select_factuals(classifier, test.X, n_factuals, seed)
    # a test point may lie outside the search box (e.g. μ ± 2σ of the training data): widen the
    # box to hold every factual, so generate's check accepts them and the search starts at x
    lower = np.minimum(np.broadcast_to(np.asarray(constraints.lower if constraints.lower is not None else -np.inf,
                                                  np.float32), x.shape[1:]), x.min(0))
    upper = np.maximum(np.broadcast_to(np.asarray(constraints.upper if constraints.upper is not None else np.inf,
                                                  np.float32), x.shape[1:]), x.max(0))
    constraints = dataclasses.replace(constraints, lower=lower, upper=upper)
    res = generate(generator, classifier, x, target, key=key, constraints=constraints, max_steps=max_steps)
    cf = np.asarray(res.counterfactuals[:, 0])
    valid = np.asarray(res.target_probs[:, 0]) >= float(res.threshold)
    bank, mask = sample_bank(train.X, train.y, int(classifier.n_classes), ip_samples, seed)
    ip = implausibility(cf, target, bank, mask)
    ip_valid = np.where(valid, ip, np.nan)
    star, star_boot = (ip_star(cf[valid], target[valid], bank, mask, length_scale=length_scale, size=ip_star_size,
                               seed=seed, n_boot=n_boot) if valid.any() else (float("nan"), np.full(n_boot, np.nan)))
    d = train.X.shape[1]
    free = [j for j in range(d) if j not in set(protected)]
    robust = robust_accuracy(classifier, test.X, test.y, eps, key=jax.random.fold_in(key, 1), steps=pgd_steps)
    scalars = {
        "accuracy": accuracy(classifier, test.X, test.y),
        "validity": float(valid.mean()),
        "ip": float(np.nanmean(ip_valid)) if valid.any() else float("nan"),
        "ip_star": star,
        "cost": cost(x, cf, valid),
        "cost_unprotected": cost(x, cf, valid, free),
        "sensitivity": (protected_sensitivity(classifier, x, protected, np.asarray(train.X).mean(0))
                        if len(protected) else float("nan")),
        **{f"fgsm_{e:g}": float(a) for e, a in zip(robust["eps"], robust["fgsm"])},
        **{f"pgd_{e:g}": float(a) for e, a in zip(robust["eps"], robust["pgd"])},
    }
    arrays = {"factuals": x, "target": target, "counterfactuals": cf, "valid": valid, "ip": ip_valid,
              "ip_star_boot": star_boot, **{f"robust_{k}": v for k, v in robust.items()}}
    return scalars, arrays

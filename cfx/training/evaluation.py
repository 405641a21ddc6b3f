"""Evaluation of counterfactually trained models (SPEC §5): :func:`evaluate_model` scores one
model with the registered population metrics of :mod:`cfx.evaluation.population` (``ip``,
``ip_star``, ``cost``, ``sensitivity``, ``accuracy``, ``fgsm`` / ``pgd``);
:func:`reduction_ci` is the % reduction of a mean (CT vs baseline) with a bootstrap interval.

Old names (one release): ``implausibility`` is :func:`cfx.evaluation.population.ip` (CT's L1 IP,
not the kNN-L2 ``implausibility`` metric); ``mmd2`` is :func:`cfx.evaluation.mmd.mmd2`.
"""

from __future__ import annotations

import dataclasses
import warnings

import jax
import numpy as np

from cfx.classifier import Classifier
from cfx.evaluation.mmd import mmd2
from cfx.evaluation.population import (
    cost,
    integrated_gradients,
    ip,
    ip_star,
    logit_accuracy,
    protected_sensitivity,
    robust_accuracy,
    sample_bank,
)

__all__ = [
    "evaluate_model",
    "reduction_ci",
    "reduction_from_replicates",
    "select_factuals",
    "accuracy",
    "cost",
    "implausibility",
    "integrated_gradients",
    "ip",
    "ip_star",
    "mmd2",
    "protected_sensitivity",
    "robust_accuracy",
    "sample_bank",
]

#: mean(argmax f(x) == y) as CT has always computed it (float32, raw logits, one compiled call)
accuracy = logit_accuracy


def implausibility(cf, target, bank, mask) -> np.ndarray:
    """Deprecated name of :func:`cfx.evaluation.population.ip` (CT's IP, mean L1 to samples)."""
    warnings.warn(
        "cfx.training.evaluation.implausibility is now cfx.evaluation.population.ip (CT's IP); "
        "'implausibility' names the kNN-L2 metric of cfx.evaluate",
        DeprecationWarning,
        stacklevel=2,
    )
    return ip(cf, target, bank, mask)


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


def evaluate_model(
    classifier: Classifier,
    train,
    test,
    *,
    generator,
    constraints,
    protected,
    key,
    n_factuals: int = 500,
    max_steps: int = 50,
    ip_samples: int = 1000,
    ip_star_size: int = 100,
    length_scale: float = 0.5,
    eps=(0.0, 0.025, 0.05, 0.075, 0.1),
    pgd_steps: int = 40,
    n_boot: int = 200,
    seed: int = 0,
) -> tuple[dict, dict]:
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
    lower = np.minimum(
        np.broadcast_to(
            np.asarray(constraints.lower if constraints.lower is not None else -np.inf, np.float32), x.shape[1:]
        ),
        x.min(0),
    )
    upper = np.maximum(
        np.broadcast_to(
            np.asarray(constraints.upper if constraints.upper is not None else np.inf, np.float32), x.shape[1:]
        ),
        x.max(0),
    )
    constraints = dataclasses.replace(constraints, lower=lower, upper=upper)
    res = generate(generator, classifier, x, target, key=key, constraints=constraints, max_steps=max_steps)
    cf = np.asarray(res.counterfactuals[:, 0])
    valid = np.asarray(res.target_probs[:, 0]) >= float(res.threshold)
    bank, mask = sample_bank(train.X, train.y, int(classifier.n_classes), ip_samples, seed)
    ip_values = ip(cf, target, bank, mask)
    ip_valid = np.where(valid, ip_values, np.nan)
    star, star_boot = (
        ip_star(
            cf[valid], target[valid], bank, mask, length_scale=length_scale, size=ip_star_size, seed=seed, n_boot=n_boot
        )
        if valid.any()
        else (float("nan"), np.full(n_boot, np.nan))
    )
    d = train.X.shape[1]
    free = [j for j in range(d) if j not in set(protected)]
    robust = robust_accuracy(classifier, test.X, test.y, eps, key=jax.random.fold_in(key, 1), steps=pgd_steps)
    scalars = {
        "accuracy": logit_accuracy(classifier, test.X, test.y),
        "validity": float(valid.mean()),
        "ip": float(np.nanmean(ip_valid)) if valid.any() else float("nan"),
        "ip_star": star,
        "cost": cost(x, cf, valid),
        "cost_unprotected": cost(x, cf, valid, free),
        "sensitivity": (
            protected_sensitivity(classifier, x, protected, np.asarray(train.X).mean(0))
            if len(protected)
            else float("nan")
        ),
        **{f"fgsm_{e:g}": float(a) for e, a in zip(robust["eps"], robust["fgsm"])},
        **{f"pgd_{e:g}": float(a) for e, a in zip(robust["eps"], robust["pgd"])},
    }
    arrays = {
        "factuals": x,
        "target": target,
        "counterfactuals": cf,
        "valid": valid,
        "ip": ip_valid,
        "ip_star_boot": star_boot,
        **{f"robust_{k}": v for k, v in robust.items()},
    }
    return scalars, arrays

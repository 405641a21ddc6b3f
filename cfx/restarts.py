"""Restarts from valid data for counterfactuals a gradient search leaves invalid.

Why: under a data set's constraints a projected gradient search can stall where the model's
gradient points out of the feasible set. On Adult with cfx's MLP the gradient at most rejected
rows asks for a negative capital gain or loss, or a change of an immutable feature; the
projection clamps the step to the box's face and the search sits at a constrained stationary
point with p(target) < τ for ever (more steps, another step size, no diversity or cost term:
the same rows fail; without bounds or immutables they all succeed; docs/tabular.md). Yet about
80 % of the feasible box is valid for those rows. So the failure is local, not infeasibility.

What a restart does, per factual with an invalid member (all in compiled, vectorised passes):

  1. every point of a bank of training rows is projected onto the factual's feasible set
     (immutable features copied, monotone sides, bounds, one-hot groups and integer grids
     snapped) and scored; the ones valid at the search threshold (else at τ) are ranked by L1
     distance to the factual (the nearest valid, actionable neighbours, as in dice-ml's
     ``kdtree`` method);
  2. the factual's j-th invalid member takes the j-th nearest such point v (distinct points keep
     a set diverse), and a bisection on the segment x + t·(v − x), snapped, finds the smallest
     t in [0, 1] (to 2^-20) whose point is still valid. Every point on the segment satisfies the
     constraints (a convex combination of x and a feasible v, then snapped).

A factual none of whose bank points is valid under its constraints keeps its invalid member
and is reported as such (``found`` False): no counterfactual was found, which for a data set
that covers the feasible region means the constraints very likely exclude one.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from cfx._validate import as_float, float_dtype
from cfx.search import _convergence as convergence
from cfx.classifier import Classifier
from cfx.constraints import Constraints
from cfx.search import CONVERGED

BANK_PER_CLASS = 2000  # training rows per predicted class in the bank (seeded draw)
BISECTION_STEPS = 20


def bank(classifier: Classifier, X, *, per_class: int = BANK_PER_CLASS, seed: int = 0) -> np.ndarray:
    """Up to ``per_class`` rows of ``X`` (n, d) per class the model predicts (seeded), so a rare
    target class is represented."""
    X = np.asarray(X, float_dtype())
    pred = np.asarray(classifier.predict(X))
    rng = np.random.default_rng(seed)
    picks = [
        rng.choice(np.flatnonzero(pred == c), min(per_class, int((pred == c).sum())), replace=False)
        for c in np.unique(pred)
    ]
    return X[np.sort(np.concatenate(picks))]


def _ok(clf, z, target, factual_class, threshold):
    shape = z.shape[:-1]
    logits = clf.raw_logits(z.reshape(-1, z.shape[-1]))
    t = jnp.broadcast_to(target, shape).reshape(-1)
    f = jnp.broadcast_to(factual_class, shape).reshape(-1)
    th = jnp.broadcast_to(threshold, shape).reshape(-1)
    return convergence.reached(logits, t, f, th).reshape(shape)


@functools.partial(jax.jit, static_argnames=("K",))
def _nearest(clf, x, target, bank_points, constraints, search_threshold, tau, K):
    """(m, K, d) the K nearest bank points valid after projection, (m, K) whether each exists."""

    def one(args):
        xi, ti = args
        fc = jnp.argmax(clf.raw_logits(xi[None]), axis=-1)[0]
        z = constraints.project(bank_points, xi[None], one_hot=True)  # (M, d)
        dist = jnp.sum(jnp.abs(z - xi), axis=-1)
        high = _ok(clf, z, ti, fc, search_threshold)
        low = _ok(clf, z, ti, fc, tau)
        use = jnp.where(jnp.any(high), high, low)  # room for the sparsity pass where there is any
        neg, idx = jax.lax.top_k(jnp.where(use, -dist, -jnp.inf), K)
        return z[idx], jnp.isfinite(neg), jnp.where(jnp.any(high), search_threshold, tau)

    return jax.lax.map(one, (x, target), batch_size=16)


@jax.jit
def _bisect(clf, x, v, target, threshold, constraints):
    """Smallest t (to 2^-20) with snap(x + t(v − x)) valid; x, v (m, d), v valid."""
    fc = jnp.argmax(clf.raw_logits(x), axis=-1)

    def point(t):
        return constraints.project(x + t[:, None] * (v - x), x, one_hot=True)

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        ok = _ok(clf, point(mid), target, fc, threshold)
        return jnp.where(ok, lo, mid), jnp.where(ok, mid, hi)

    m = x.shape[0]
    _, hi = jax.lax.fori_loop(0, BISECTION_STEPS, body, (jnp.zeros(m), jnp.ones(m)))
    return point(hi)


def reachable(classifier: Classifier, bank_points, x, target, *, tau: float) -> np.ndarray:
    """(n,) bool: some bank point is valid for factual i at τ, constraints ignored. Where it is
    False the model gives the target to none of the bank's rows (the classifier's training data),
    so the constraints are not what leaves the factual without a counterfactual."""
    x = jnp.asarray(x, float_dtype())
    B = jnp.asarray(bank_points, float_dtype())
    logits = classifier.raw_logits(B)  # (M, C)
    fc = jnp.argmax(classifier.raw_logits(x), axis=-1)
    ok = convergence.reached(logits[None], jnp.asarray(target, jnp.int32)[:, None], fc[:, None], as_float(tau))
    return np.asarray(jnp.any(ok, axis=1))


def _padded(a: np.ndarray) -> np.ndarray:
    """``a`` with its rows repeated up to the next power of two (>= 8), so the compiled passes
    see few distinct shapes however many rows need a restart."""
    m = len(a)
    size = max(8, 1 << (m - 1).bit_length())
    return np.concatenate([a, np.repeat(a[:1], size - m, axis=0)]) if size > m else a


def restart(
    classifier: Classifier,
    x,
    x_cf,
    target,
    invalid,
    bank_points,
    constraints: Constraints,
    *,
    tau: float,
    search_threshold: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Replace the invalid counterfactuals by restarts from valid data (module docstring).

    Args: x (n, d) factuals; x_cf (n, K, d); target (n,) (−1: untargeted); invalid (n, K) bool,
    the members to replace; bank_points (M, d) (:func:`bank`); constraints as searched;
    tau the validity threshold; search_threshold the p the restart aims for where a bank point
    reaches it (None: τ).

    Returns (x_cf with the replacements, restarted (n, K) bool: replaced by a valid point).
    """
    x, x_cf = np.asarray(x, float_dtype()), np.array(x_cf, float_dtype())
    invalid = np.asarray(invalid, bool)
    n, K, d = x_cf.shape
    restarted = np.zeros((n, K), bool)
    rows = np.flatnonzero(invalid.any(1))
    if len(rows) == 0:
        return x_cf, restarted
    resolved = constraints.resolve(d) if isinstance(constraints, Constraints) else constraints
    target = np.asarray(target, np.int32)
    high = as_float(max(tau, search_threshold or 0.0))
    cand, exists, aim = _nearest(
        classifier,
        jnp.asarray(_padded(x[rows])),
        jnp.asarray(_padded(target[rows])),
        jnp.asarray(bank_points, float_dtype()),
        resolved,
        high,
        as_float(tau),
        min(K, len(bank_points)),
    )
    m = len(rows)
    cand, exists, aim = np.asarray(cand)[:m], np.asarray(exists)[:m], np.asarray(aim)[:m]
    # the factual's j-th invalid member takes the j-th nearest valid point
    rank = np.cumsum(invalid[rows], axis=1) - 1
    member_r, member_k = np.nonzero(invalid[rows])
    found = exists.sum(1)[member_r]  # valid points are ranked first
    has = found > 0
    j = rank[member_r, member_k] % np.maximum(found, 1)  # fewer valid points than members: they are shared
    member_r, member_k, j = member_r[has], member_k[has], j[has]
    if len(member_r):
        v = cand[member_r, j]
        fi = rows[member_r]
        new = np.asarray(
            _bisect(
                classifier,
                jnp.asarray(_padded(x[fi])),
                jnp.asarray(_padded(v)),
                jnp.asarray(_padded(target[fi])),
                jnp.asarray(_padded(aim[member_r])),
                resolved,
            )
        )[: len(fi)]
        x_cf[fi, member_k] = new
        restarted[fi, member_k] = True
    return x_cf, restarted


def repair(
    result,
    classifier: Classifier,
    data,
    *,
    constraints: Constraints | None = None,
    seed: int = 0,
    per_class: int = BANK_PER_CLASS,
):
    """:func:`restart` for a :class:`cfx.CounterfactualResult` of :func:`cfx.generate`: every
    counterfactual not valid at the result's τ is replaced by a restart from ``data``'s rows
    (a Dataset or an (n, d) array; the classifier's training data), under the same ``constraints``
    the search used. Returns (the result with those counterfactuals, their ``outcome`` set to
    converged and ``target_probs`` updated; restarted (n, K) bool). A row still not converged
    after it had no valid training row under its constraints: none very likely exists.
    """
    x, x_cf = np.asarray(result.factuals), np.asarray(result.counterfactuals)
    n, K, d = x_cf.shape
    target = np.asarray(result.target, np.int32)
    tau = float(result.threshold)
    fc = np.repeat(np.asarray(jnp.argmax(classifier.raw_logits(jnp.asarray(x)), axis=-1)), K)
    ok = np.asarray(
        _ok(
            classifier,
            jnp.asarray(x_cf.reshape(n * K, d)),
            jnp.asarray(np.repeat(target, K)),
            jnp.asarray(fc),
            as_float(tau),
        )
    ).reshape(n, K)
    if ok.all():
        return result, np.zeros((n, K), bool)
    X = np.asarray(getattr(data, "X", data), float_dtype())
    new, restarted = restart(
        classifier,
        x,
        x_cf,
        target,
        ~ok,
        bank(classifier, X, per_class=per_class, seed=seed),
        Constraints() if constraints is None else constraints,
        tau=tau,
    )
    logits = classifier.raw_logits(jnp.asarray(new.reshape(n * K, d)))
    probs = convergence.class_probs(logits, jnp.asarray(np.repeat(target, K)), jnp.asarray(fc))
    return result.replace(
        counterfactuals=new,
        outcome=np.where(restarted, CONVERGED, np.asarray(result.outcome)).astype(np.int32),
        target_probs=np.where(restarted, np.asarray(probs).reshape(n, K), np.asarray(result.target_probs)),
    ), restarted


__all__ = ["bank", "restart", "repair", "reachable", "BANK_PER_CLASS"]

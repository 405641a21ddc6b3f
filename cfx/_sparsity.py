"""explain's passes over the found points: the greedy sparsity reversion (:func:`sparsify`), validity, DiCE's pick.

Re-exported by :mod:`cfx.explain` (import them from there).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from cfx._spread import most_diverse
from cfx._validate import as_float, float_dtype
from cfx.search import _convergence as convergence
from cfx.classifier import Classifier
from cfx.data.rows import raw_counterfactuals

CONTINUOUS_TOLERANCE = 1e-5  # |Δ| above this (standardised units) is a change (SPEC §4's L0)


def _choose(clf, encoder, rows, x, x_cf, outcome, target, threshold, K: int, sparse: bool):
    """The K members of each row's pool (x_cf (n, P, d)) that :func:`most_diverse` picks (K = 1:
    the nearest valid one), each judged as it would be returned: after its own sparsity pass and
    rounded to the columns' grids and precisions (the raw row re-encoded). Where the K picked are
    pairwise distinct those points are returned; elsewhere (the pool holds fewer than K distinct
    valid points) the picked members as searched, which explain's set-aware sparsity pass keeps
    apart. Returns the points (n, K, d) and their outcomes (n, K)."""
    n, P, d = x_cf.shape
    x, units = np.asarray(x), encoder.units()

    def rounded(z):  # as returned: the raw row, rounded, re-encoded
        return encoder.encode(raw_counterfactuals(encoder, rows, x, z, CONTINUOUS_TOLERANCE)[0]).reshape(n, P, d)

    searched = rounded(np.asarray(x_cf))
    pool = searched
    if sparse:
        pool = rounded(
            np.asarray(
                sparsify(
                    clf,
                    np.repeat(x, P, 0),
                    searched.reshape(n * P, 1, d),
                    np.repeat(np.asarray(target), P),
                    threshold,
                    units,
                )
            ).reshape(n, P, d)
        )
    ok = np.asarray(_validity(clf, x, pool, target, threshold)[1])
    if K == 1:
        idx = np.argmin(np.where(ok, np.abs(pool - x[:, None]).sum(-1), np.inf), axis=1)[:, None]
        return np.take_along_axis(pool, idx[..., None], 1), np.take_along_axis(outcome, idx, 1)
    onehot = np.eye(np.max(units) + 1)[np.asarray(units)]  # (d, U)
    idx = most_diverse(pool, ok, K, (np.abs(pool - x[:, None]) @ onehot) > CONTINUOUS_TOLERANCE)
    picked = np.take_along_axis(pool, idx[..., None], 1)
    same = (np.all(picked[:, :, None] == picked[:, None], -1) & ~np.eye(K, dtype=bool)).any((1, 2))
    if same.any():  # too few distinct sparse points: the searched members farthest apart instead
        ok_s = np.asarray(_validity(clf, x, searched, target, threshold)[1])
        alt = most_diverse(searched, ok_s, K, (np.abs(searched - x[:, None]) @ onehot) > CONTINUOUS_TOLERANCE)
        idx = np.where(same[:, None], alt, idx)
        picked = np.where(same[:, None, None], np.take_along_axis(searched, alt[..., None], 1), picked)
    return picked, np.take_along_axis(outcome, idx, 1)


# ----------------------------------------------------------------------------- compiled passes
def _flat(clf, x, x_cf, target):
    n, K, d = x_cf.shape
    xs = jnp.broadcast_to(x[:, None], (n, K, d)).reshape(n * K, d)
    factual_class = jnp.repeat(jnp.argmax(clf.raw_logits(x), axis=-1), K)
    return xs, x_cf.reshape(n * K, d), jnp.repeat(target, K), factual_class


@jax.jit
def _sparsify(clf, x, x_cf, target, threshold, units_onehot):
    n, K, d = x_cf.shape
    xs, cf, tgt, fc = _flat(clf, x, x_cf, target)
    size = jnp.abs(cf - xs) @ units_onehot  # (N, U): how much each raw feature moved
    order = jnp.argsort(size, axis=-1)  # smallest change first: the likeliest to be unneeded

    def support(z):  # (n, K, U): which raw features a member changes
        return ((jnp.abs(z - xs) @ units_onehot) > 0).reshape(n, K, -1)

    def same(a, b):  # (n, K, K): member i of a changes the same features as member j of b, i != j
        eq = jnp.all(a[:, :, None] == b[:, None], axis=-1)
        return eq & ~jnp.eye(K, dtype=bool)

    def revert(r, cf):
        unit = order[:, r]
        trial = jnp.where(units_onehot.T[unit] > 0, xs, cf)  # that raw feature (a whole group) back to x
        ok = convergence.reached(clf.raw_logits(trial), tgt, fc, threshold)
        # A set stays a set: a reversion that would leave a member changing the same features as
        # another member (as it is, or as it becomes in this step) is refused; otherwise
        # sparsifying collapses DiCE's K options into one ("raise capital gain", three times).
        t3, c3, ok3 = support(trial), support(cf), ok.reshape(n, K)
        clash = jnp.any(same(t3, c3) | (same(t3, t3) & ok3[:, None, :]), axis=-1)
        accept = (ok3 & ~clash).reshape(n * K)
        return jnp.where(accept[:, None], trial, cf)

    cf = jax.lax.fori_loop(0, units_onehot.shape[1], revert, cf)
    return cf.reshape(n, K, d)


def sparsify(classifier: Classifier, x, x_cf, target, threshold, units) -> jax.Array:
    """Greedy reversion: for each counterfactual, go through its raw features from the smallest
    change (standardised L1) to the largest and set each back to the factual's value if the point
    stays valid (p(target) >= τ; untargeted: another class wins with p >= τ) and does not leave
    it changing the same set of features as another of the factual's K counterfactuals (K > 1).

    One compiled call for all n·K counterfactuals: a ``fori_loop`` over the U raw features, each
    step one forward pass of the batch. A one-hot group reverts as a whole, so constraints stay
    satisfied (the factual satisfies them). Shapes: x (n, d), x_cf (n, K, d), target (n,),
    units (d,) the raw feature of each column (``encoder.units()``).
    """
    units = np.asarray(units)
    onehot = jnp.asarray(np.eye(units.max() + 1, dtype=float_dtype())[units])
    return _sparsify(
        classifier, jnp.asarray(x), jnp.asarray(x_cf), jnp.asarray(target, jnp.int32), as_float(threshold), onehot
    )


@jax.jit
def _validity(clf, x, x_cf, target, threshold):
    n, K, _ = x_cf.shape
    _, cf, tgt, fc = _flat(clf, x, x_cf, target)
    logits = clf.raw_logits(cf)
    p, ok = convergence.class_probs(logits, tgt, fc), convergence.reached(logits, tgt, fc, threshold)
    return p.reshape(n, K), ok.reshape(n, K)

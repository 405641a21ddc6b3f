"""explain's DiCE pool (issue 23): spread starts for several runs per row, and the choice of
the K members farthest apart. Host-side numpy over whole batches (no loop over rows)."""

from __future__ import annotations

import itertools
import math

import numpy as np

from cfx._validate import float_dtype

SPREAD_SHARE = 0.5  # start="spread": each mutable raw feature is redrawn with this probability


def spread_starts(
    x, K: int, constraints, units, seed: int = 0, share: float = SPREAD_SHARE, runs: int = 1, sample=None
) -> np.ndarray:
    """(m, K, d) starts for the rows x (m, d) (each factual repeated ``runs`` times in a row).

    The first member of a factual's first run starts at x. Every other member starts at x with
    each mutable raw feature redrawn with probability ``share`` (at least one feature), as
    dice-ml's random method draws its candidates: from a random row of ``sample`` (M, d) (the
    training data: typical values, a one-hot group at one level), or without a sample uniformly
    from the constraints' box [lower, upper]. :func:`cfx.generate` projects the starts onto the
    constraints (immutable features, directions, bounds). Seeded by ``seed``.
    """
    x = np.asarray(x, float_dtype())
    m, d = x.shape
    rc = constraints.resolve(d) if hasattr(constraints, "resolve") else constraints
    lo, hi = np.asarray(rc.lower, np.float64), np.asarray(rc.upper, np.float64)
    units = np.asarray(units)
    rng = np.random.default_rng(seed)
    if sample is not None:
        sample = np.asarray(sample, np.float64)
        draw = sample[rng.integers(len(sample), size=(m, K))]
        free = np.asarray(rc.mutability) != 3  # 3: immutable
    else:
        free = np.isfinite(lo) & np.isfinite(hi) & (np.asarray(rc.mutability) != 3)
        draw = np.where(free, lo + rng.random((m, K, d)) * np.where(free, hi - lo, 0.0), 0.0)
        for group in rc.categorical_groups:
            g = np.asarray(group)
            draw[..., g] = (
                np.eye(len(g))[rng.integers(len(g), size=(m, K))] if len(g) > 1 else rng.integers(2, size=(m, K, 1))
            )
    movable = np.zeros(units.max() + 1, bool)
    np.logical_or.at(movable, units, free)
    pick = (rng.random((m, K, len(movable))) < share) & movable
    if movable.any():  # a member that drew no feature moves one movable feature
        one = rng.choice(np.flatnonzero(movable), size=(m, K))
        pick |= ~pick.any(-1, keepdims=True) & (np.arange(len(movable)) == one[..., None])
    pick[::runs, 0] = False
    return np.where(pick[..., units] & free, draw, x[:, None]).astype(float_dtype())


def most_diverse(points, ok, K: int, support=None) -> np.ndarray:
    """(n, K) indices into the P members of each row (points (n, P, d), ok (n, P) valid): the K
    with the most valid members, then the most pairs whose ``support`` (n, P, U) (the raw features
    changed) differ, then the largest Σ_{a<b} ||x'_a − x'_b||_1. Every K-subset when there are at
    most 5,000, else greedily (add the member that adds the most)."""
    points, ok = np.asarray(points, np.float64), np.asarray(ok, bool)
    n, P, _ = points.shape
    D = np.stack([np.abs(points[:, i : i + 1] - points).sum(-1) for i in range(P)], 1)  # (n, P, P)
    apart = (
        D > 0
        if support is None
        else np.stack([np.any(support[:, i : i + 1] != support, -1) for i in range(P)], 1) & (D > 0)
    )
    # one score per pair and per member, lexicographic through its scale: pairs apart, then L1
    pair = apart * (1.0 + K * K * D.max()) + D
    member = ok * (1.0 + K * K * pair.max())
    if math.comb(P, K) <= 5000:
        c = np.asarray(list(itertools.combinations(range(P), K)))
        total = member[:, c].sum(-1) + sum(pair[:, c[:, a], c[:, b]] for a, b in itertools.combinations(range(K), 2))
        return c[np.argmax(total, axis=1)]
    rows = np.arange(n)[:, None]
    chosen = np.argmax(member + pair.sum(2), axis=1)[:, None]
    for _ in range(K - 1):
        gain = member + pair[rows, chosen].sum(1)
        gain[rows, chosen] = -np.inf
        chosen = np.concatenate([chosen, np.argmax(gain, axis=1)[:, None]], 1)
    return chosen

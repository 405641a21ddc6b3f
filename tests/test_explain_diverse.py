"""explain's DiCE: several runs from spread starts, the K valid members farthest apart (issue 23)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import cfx
from cfx.explain import most_diverse, spread_starts
from test_explain import problem  # noqa: F401  (the module-scoped toy problem)


def _best_by_brute_force(points, ok, K):
    """Lexicographic: most valid members, most pairs apart (distinct points), largest Σ pairwise L1."""
    key = None
    for c in itertools.combinations(range(len(points)), K):
        pairs = list(itertools.combinations(c, 2))
        d = [np.abs(points[a] - points[b]).sum() for a, b in pairs]
        k = (int(ok[list(c)].sum()), sum(v > 0 for v in d), sum(d))
        if key is None or k > key:
            key = k
    return key


def test_most_diverse_picks_the_best_subset():
    rng = np.random.default_rng(3)
    points = rng.integers(0, 4, (6, 7, 3)).astype(float)  # small grid: duplicates and ties occur
    points[0, 1] = points[0, 2] = points[0, 3]
    ok = rng.random((6, 7)) < 0.6
    ok[1] = False
    idx = most_diverse(points, ok, 3)
    for i in range(6):
        c = idx[i]
        assert len(set(c)) == 3
        pairs = list(itertools.combinations(c, 2))
        d = [np.abs(points[i, a] - points[i, b]).sum() for a, b in pairs]
        assert (int(ok[i, c].sum()), sum(v > 0 for v in d), pytest.approx(sum(d))) == _best_by_brute_force(
            points[i], ok[i], 3
        )
    # many members: the greedy path still returns distinct, valid members where there are enough
    big = rng.normal(size=(4, 40, 3))
    ok_big = rng.random((4, 40)) < 0.5
    g = most_diverse(big, ok_big, 3)
    assert all(len(set(r)) == 3 for r in g) and ok_big[np.arange(4)[:, None], g].all()


def test_spread_starts_stay_in_the_box_and_keep_immutables(problem):  # noqa: F811
    train, clf, rows = problem
    X = train.encoder.encode(rows)
    con = train.schema.constraints().resolve(X.shape[1])
    runs, K = 2, 3
    starts = spread_starts(np.repeat(X, runs, 0), K, con, train.encoder.units(), seed=0, runs=runs)
    assert starts.shape == (len(X) * runs, K, X.shape[1])
    x = np.repeat(X, runs, 0)[:, None]
    np.testing.assert_array_equal(starts[::runs, 0], X)  # a factual's first member starts at x
    moved = np.abs(starts - x) > 0
    assert moved[1::runs].any(-1).all() and moved[:, 1:].any(-1).all()  # every other member moves
    immutable = np.asarray(con.mutability) == 3
    assert not moved[..., immutable].any()
    lo, hi = np.asarray(con.lower), np.asarray(con.upper)
    assert ((starts >= lo - 1e-6) & (starts <= hi + 1e-6)).all()
    for g in con.categorical_groups:  # a one-hot group starts at one level
        if len(g) > 1:
            np.testing.assert_array_equal(starts[..., list(g)].sum(-1), 1.0)


def test_explain_dice_runs_return_distinct_sets_at_least_as_diverse(problem):  # noqa: F811
    train, clf, rows = problem
    out = cfx.explain(clf, rows, data=train, target=1, generator="dice", num_counterfactuals=3)
    one = cfx.explain(clf, rows, data=train, target=1, generator="dice", num_counterfactuals=3, runs=1)
    assert out["valid"].all() and not out["duplicate"].any()
    names = list(train.encoder.feature_names)
    for _, members in out.groupby(level="id"):
        raw = members[names].to_numpy()
        assert len({tuple(r) for r in raw}) == 3 and len(set(members["changed"])) == 3
    # the K are the most diverse valid members of four runs: more diverse than one run's set here
    assert out["diversity"].mean() > one["diversity"].mean()
    with pytest.raises(ValueError, match="runs"):
        cfx.explain(clf, rows, data=train, target=1, generator="dice", num_counterfactuals=3, runs=0)

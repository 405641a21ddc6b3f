"""cfx.explain: DataFrame in, DataFrame of raw counterfactuals out (issue 11)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import cfx
import cfx.data as D
from cfx.explain import sparsify


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    n = 80
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 70, n),
            "income": rng.normal(50, 10, n).round(2),
            "grade": rng.choice(["C", "B", "A"], n),
            "colour": rng.choice(["red", "green", "blue"], n),
            "owner": rng.choice(["yes", "no"], n),
            "ok": rng.integers(0, 2, n),
        }
    )
    data = D.from_frame(
        df,
        "ok",
        integer=["age"],
        ordinal={"grade": ["C", "B", "A"]},
        categorical=["colour"],
        mutability={"owner": "none", "age": "increase"},
    )
    train, test = D.train_test(data, seed=0)
    # a fixed linear model on the standardised columns: age, income and grade raise the score
    w = jnp.array([[0.0, 0.8], [0.0, 0.6], [0.0, 1.0], [0, 0], [0, 0], [0, 0.3], [0, 0.5]], jnp.float32)
    clf = cfx.Classifier(lambda p, x: x @ p["w"] + p["b"], {"w": w, "b": jnp.array([0.0, -1.0])}, n_features=7)
    rows = test.to_frame()
    rows = rows[np.asarray(clf.predict(test.X)) == 0].head(4)
    return train, clf, rows


def p_one(clf, train, frame):
    return np.asarray(clf.probs(train.encoder.encode(frame)))[:, 1]


def test_explain_returns_raw_valid_sparse_counterfactuals(problem):
    train, clf, rows = problem
    out = cfx.explain(clf, rows, data=train, target=1)
    names = list(train.encoder.feature_names)
    assert out.index.names == ["id", "cf"] and list(out.index.get_level_values("id")) == list(rows.index)
    assert list(out.columns[:5]) == names
    assert out["valid"].all() and (out["p_target"] >= 0.5).all()
    np.testing.assert_allclose(out["p_target"], p_one(clf, train, out[names]), rtol=1e-5)  # judged on the raw point
    assert out["age"].dtype == np.int64 and set(out["grade"]) <= {"A", "B", "C"}
    facts = rows.loc[out.index.get_level_values("id")].reset_index(drop=True)
    cfs = out[names].reset_index(drop=True)
    assert (cfs["owner"] == facts["owner"]).all() and (cfs["age"] >= facts["age"]).all()
    differs = (cfs != facts).to_numpy()
    np.testing.assert_array_equal(differs.sum(1), out["n_changed"])
    assert [tuple(np.asarray(names)[m]) for m in differs] == list(out["changed"])
    # sparse: each remaining change is needed (reverting it alone breaks validity)
    for i, row in enumerate(differs):
        for j in np.flatnonzero(row):
            trial = cfs.iloc[[i]].copy()
            trial[names[j]] = facts.iloc[i, j]
            assert p_one(clf, train, trial)[0] < 0.5
    dense = cfx.explain(clf, rows, data=train, target=1, sparse=False)
    assert out["n_changed"].sum() <= dense["n_changed"].sum()
    assert set(out.attrs["factuals"].index) == set(rows.index)
    untargeted = cfx.explain(clf, rows, data=train)  # binary model: the other class
    assert untargeted[names].equals(out[names]) and untargeted["valid"].all()


def test_explain_dice_sets_are_distinct(problem):
    train, clf, rows = problem
    out = cfx.explain(clf, rows, data=train, target=1, generator="dice", num_counterfactuals=3)
    assert len(out) == 3 * len(rows) and list(out.index.get_level_values("cf")[:3]) == [0, 1, 2]
    assert out["valid"].all() and not out["duplicate"].any()
    for _, members in out.groupby(level="id"):
        assert len(set(members["changed"])) == 3  # three different sets of changed features
        assert members["diversity"].iloc[0] > 0


def test_explain_bad_input_names_the_problem(problem):
    train, clf, rows = problem
    cases = [
        (dict(rows=rows.assign(extra=1)), ValueError, "unknown column.*extra"),
        (dict(rows=rows.assign(colour="purple")), ValueError, "colour.*unseen level"),
        (dict(rows=rows.assign(income=np.nan)), ValueError, "income.*missing"),
        (dict(rows=rows.values), TypeError, "rows must be a pandas DataFrame"),
        (dict(generator="dicee"), ValueError, "generator: unknown generator 'dicee'.*did you mean 'dice'"),
        (dict(lamda=1.0), ValueError, r"unknown option\(s\) \['lamda'\]"),
        (dict(classifier="a model"), TypeError, "classifier must be a cfx.Classifier"),
        (dict(data=D.load("moons", n=20)), ValueError, "data: 'moons' has no fitted encoder"),
        (dict(search_threshold=1.5), ValueError, "search_threshold"),
    ]
    for change, error, match in cases:
        args = dict(classifier=clf, rows=rows, data=train, target=1) | change
        with pytest.raises(error, match=match):
            cfx.explain(args.pop("classifier"), args.pop("rows"), **args)
    # the old name dataset= works one more release, with a warning
    with (
        pytest.warns(DeprecationWarning, match=r"dataset=\) is deprecated.*use data="),
        pytest.raises(ValueError, match="data: 'moons' has no fitted encoder"),
    ):
        cfx.explain(clf, rows, dataset=D.load("moons", n=20), target=1)


def test_sparsify_reverts_unneeded_changes_and_keeps_sets_apart():
    clf = cfx.Classifier(lambda p, x: (x @ p - 0.5)[:, None], jnp.ones(3), n_features=3)
    x = np.zeros((1, 3), np.float32)  # logit -0.5: invalid; a counterfactual needs x1 + x2 + x3 > 0.5
    one = sparsify(clf, x, np.array([[[2.0, 0.1, 0.2]]], np.float32), np.array([1]), 0.5, np.arange(3))
    np.testing.assert_allclose(np.asarray(one), [[[2.0, 0.0, 0.0]]])  # small changes first: both unneeded
    pair = np.array([[[2.0, 0.1, 0.0], [2.0, 0.0, 0.1]]], np.float32)  # both would become (2, 0, 0)
    kept = np.asarray(sparsify(clf, x, pair, np.array([1]), 0.5, np.arange(3)))
    np.testing.assert_allclose(kept, pair)  # refused: the two options stay two
    grouped = sparsify(clf, x, np.array([[[2.0, 0.1, 0.2]]], np.float32), np.array([1]), 0.5, np.array([0, 1, 1]))
    np.testing.assert_allclose(np.asarray(grouped), [[[2.0, 0.0, 0.0]]])  # a group reverts as a whole

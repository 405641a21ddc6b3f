"""cfx.explain on rows as users hold them (issue 23): dtypes, exact copies, per-call constraints,
rows already at the target, one row as a Series or a dict."""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import cfx
import cfx.data as D

COLOURS = pd.CategoricalDtype(["red", "green", "blue", "pink"])  # "pink" never occurs: the dtype must survive


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(1)
    n = 120
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 70, n),  # int64, not declared: an integer feature
            "income": rng.normal(40000, 8000, n).round(2),
            "colour": pd.Series(rng.choice(["red", "green", "blue"], n)).astype(COLOURS),
            "owner": rng.choice(["yes", "no"], n),
            "ok": rng.integers(0, 2, n),
        }
    )
    df.loc[3, "income"] = 39521.15  # float32 would give 39521.148438
    data = D.from_frame(df, "ok")
    train, _ = D.train_test(data, seed=0)

    def linear(weights):  # class 1 when w·z > 0.5 on the standardised columns (age, income, 3 colours, owner)
        w = jnp.zeros((6, 2)).at[:, 1].set(jnp.asarray(weights, jnp.float32))
        return cfx.Classifier(lambda p, x: x @ p["w"] + p["b"], {"w": w, "b": jnp.array([0.0, -0.5])}, n_features=6)

    return df, train, linear([1.0, 0, 0, 0, 0, 0]), linear([0, 1.0, 0, 0, 0, 0]), linear([0.7, 0.7, 0, 0, 0, 0])


def p_one(clf, train, frame):
    return np.asarray(clf.probs(train.encoder.encode(frame)))[:, 1]


def low(clf, train, df, k=4):
    feats = df.drop(columns="ok")
    return feats[p_one(clf, train, feats) < 0.4].head(k)


def test_integer_dtypes_are_inferred():
    frame = pd.DataFrame({"age": [20, 31, 45, 52], "pay": [1.5, 2.25, 3.0, 4.0], "y": [0, 1, 0, 1]})
    enc = D.from_frame(frame, "y").encoder
    assert [(c.name, c.kind) for c in enc.columns] == [("age", "integer"), ("pay", "continuous")]
    assert enc.columns[1].decimals == 2


def test_rows_come_back_as_held(problem):
    df, train, by_age, by_income, _ = problem
    names = ["age", "income", "colour", "owner"]
    rows = low(by_age, train, df).copy()
    rows.loc[rows.index[0], "income"] = 39521.15
    out = cfx.explain(by_age, rows, data=train, target=1)
    assert out["valid"].all() and (out["changed"] == ("age",)).all()
    assert out["age"].dtype == np.int64 and (out["age"].to_numpy() > rows["age"].to_numpy()).all()
    # unchanged cells are the rows' own values, bit for bit, in the rows' dtypes
    np.testing.assert_array_equal(out["income"].to_numpy(), rows["income"].to_numpy())
    assert out["income"].iloc[0] == 39521.15
    assert out["colour"].dtype == COLOURS and (out["colour"].to_numpy() == rows["colour"].to_numpy()).all()
    # valid and p_target are judged on the returned raw row, re-encoded
    np.testing.assert_allclose(out["p_target"], p_one(by_age, train, out[names]), rtol=1e-6)
    # a changed continuous value is rounded to the column's precision (2 decimals)
    out = cfx.explain(by_income, low(by_income, train, df), data=train, target=1)
    assert out["valid"].all() and (out["changed"] == ("income",)).all()
    np.testing.assert_array_equal(out["income"].to_numpy(), out["income"].round(2).to_numpy())
    # one row as a Series (its name is the id) or a dict (id 0)
    row = rows.iloc[1]
    one = cfx.explain(by_age, row, data=train, target=1)
    assert list(one.index) == [(rows.index[1], 0)]
    full = cfx.explain(by_age, rows, data=train, target=1)
    assert one[names].iloc[0].equals(full[names].iloc[1])
    as_dict = cfx.explain(by_age, row.to_dict(), data=train, target=1)
    assert list(as_dict.index) == [(0, 0)] and as_dict[names].iloc[0].equals(full[names].iloc[1])


def test_per_call_constraints(problem):
    df, train, _, _, both = problem
    rows = low(both, train, df)
    schema = train.schema
    fixed = cfx.explain(both, rows, data=train, target=1, features_to_vary=["income"])
    assert (fixed["changed"] == ("income",)).all() and fixed["valid"].all()
    frozen = cfx.explain(both, rows, data=train, target=1, immutable=["income"])
    assert (frozen["changed"] == ("age",)).all()
    down = cfx.explain(both, rows, data=train, target=1, decrease_only=["age"])
    assert (down["age"].to_numpy() <= rows["age"].to_numpy()).all()
    lo, hi = int(train.to_frame()["age"].min()), int(rows["age"].max()) + 3
    ranged = cfx.explain(both, rows, data=train, target=1, permitted_range={"age": (lo, hi)})
    assert ranged["age"].between(lo, hi).all()
    only = cfx.explain(
        both,
        rows,
        data=train,
        target=1,
        sparse=False,
        permitted_range={"colour": ["red", "green", "blue"], "owner": list(rows["owner"].unique())},
    )
    assert only["colour"].isin(["red", "green", "blue"]).all()
    assert train.schema == schema  # nothing rebuilt
    lo_age, hi_age = int(train.to_frame()["age"].min()), int(train.to_frame()["age"].max())
    cases = [
        (dict(features_to_vary=["salary"]), r"features_to_vary: unknown column\(s\) \['salary'\]"),
        (dict(immutable="wage"), r"immutable: unknown column\(s\) \['wage'\]"),
        (dict(increase_only=["colour"]), r"increase_only: column 'colour' is categorical"),
        (dict(permitted_range={"age": (lo_age - 5, hi_age)}), r"permitted_range\['age'\].*outside the data's bounds"),
        (
            dict(permitted_range={"age": (lo_age, lo_age + 1)}),
            r"permitted_range\['age'\].*excludes the value .* of row",
        ),
        (dict(permitted_range={"colour": ["purple"]}), r"permitted_range\['colour'\]: expected a list of its levels"),
        (dict(permitted_range={"height": (0, 1)}), r"permitted_range: unknown column 'height'"),
    ]
    for change, match in cases:
        with pytest.raises(ValueError, match=match):
            cfx.explain(both, rows, data=train, target=1, **change)


def test_rows_already_at_the_target_are_flagged(problem):
    df, train, by_age, _, _ = problem
    feats = df.drop(columns="ok").head(10)
    already = p_one(by_age, train, feats) >= 0.5
    assert 0 < already.sum() < len(feats)
    with pytest.warns(UserWarning, match=rf"{already.sum()} of 10 rows are already predicted as the target"):
        out = cfx.explain(by_age, feats, data=train, target=1)
    np.testing.assert_array_equal(out["already_target"].to_numpy(), already)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfx.explain(by_age, feats[~already], data=train, target=1)  # none: no warning


def test_a_yes_no_label_takes_positive():
    frame = pd.DataFrame({"pay": [1.0, 2.0, 3.0, 4.0], "approved": ["no", "yes", "no", "yes"]})
    np.testing.assert_array_equal(D.from_frame(frame, "approved", positive="yes").y, [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"label 'approved' does not map to 0..1"):
        D.from_frame(frame, "approved")
    with pytest.raises(ValueError, match=r"positive: the label 'approved' must have two levels, one of them 'Yes'"):
        D.from_frame(frame, "approved", positive="Yes")


def test_permitted_levels_steer_the_search(problem):
    df, train, *_ = problem
    w = jnp.zeros((6, 2)).at[:, 1].set(jnp.array([0, 0, 3.0, 4.0, -2.0, 0]))  # blue, green (best), red
    clf = cfx.Classifier(lambda p, x: x @ p["w"] + p["b"], {"w": w, "b": jnp.array([0.0, -0.5])}, n_features=6)
    rows = df[df["colour"] == "red"].drop(columns="ok").head(3)
    free = cfx.explain(clf, rows, data=train, target=1)
    assert (free["colour"] == "green").all() and free["valid"].all()
    kept = cfx.explain(clf, rows, data=train, target=1, permitted_range={"colour": ["red", "blue"]})
    assert (kept["colour"] == "blue").all() and kept["valid"].all() and kept["colour"].dtype == COLOURS


def test_a_multiclass_label_takes_classes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=120)
    grade = np.where(x < -0.5, "low", np.where(x < 0.5, "mid", "high"))
    frame = pd.DataFrame({"score": x, "noise": rng.normal(size=120), "grade": grade})
    data = D.from_frame(frame, "grade", classes=["low", "mid", "high"])
    np.testing.assert_array_equal(data.y[:6], pd.Series(grade[:6]).map({"low": 0, "mid": 1, "high": 2}))
    assert data.n_classes == 3
    with pytest.raises(ValueError, match=r"levels not in it: \['high'\]"):
        D.from_frame(frame, "grade", classes=["low", "mid"])
    with pytest.raises(ValueError, match=r"pass positive=; more classes: classes="):
        D.from_frame(frame, "grade")
    train, _ = D.train_test(data, seed=0)
    clf = cfx.models.fit(train, "linear", epochs=40, seed=0)
    rows = frame[data.y == 0].head(3)
    out = cfx.explain(clf, rows, data=train, target=2)
    assert out["valid"].all() and (out["score"] > rows["score"].to_numpy()).all()

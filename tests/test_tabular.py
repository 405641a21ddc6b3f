"""Tabular data as users hold it: the fitted encoder, feature kinds, integer grids, row ids,
bucketed Classifier.probs (issue 11)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import compile_counts

import cfx
import cfx.data as D
from cfx import classifier as classifier_module
from cfx.data import tabular


def frame(n=60, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 70, n),
            "income": rng.normal(50, 10, n).round(3),
            "grade": rng.choice(["C", "B", "A"], n),
            "colour": rng.choice(["red", "green", "blue"], n),
            "owner": rng.choice(["yes", "no"], n),
            "flag": rng.integers(0, 2, n),
            "ok": rng.integers(0, 2, n),
        }
    )


def dataset(df=None, **kw):
    return D.from_frame(
        frame() if df is None else df,
        "ok",
        integer=["age"],
        ordinal={"grade": ["C", "B", "A"]},
        categorical=["colour"],
        mutability={"owner": "none", "age": "increase"},
        **kw,
    )


def test_encoder_layout_kinds_and_round_trip():
    df = frame()
    data = dataset(df)
    enc, s = data.encoder, data.schema
    assert s.names == ("age", "income", "grade", "colour_blue", "colour_green", "colour_red", "owner_yes", "flag")
    assert s.kinds == (
        "integer",
        "continuous",
        "ordinal",
        "categorical",
        "categorical",
        "categorical",
        "binary",
        "binary",
    )
    assert s.categorical_groups == ((3, 4, 5), (6,), (7,)) and s.integer_features == (0, 2)
    assert enc.columns[4].levels == ("no", "yes")  # both levels of a binary column are named
    assert (s.lower[2], s.upper[2]) == (0.0, 2.0) and s.lower[0] == df.age.min()
    features = df.drop(columns="ok")
    pd.testing.assert_frame_equal(data.to_frame().reset_index(drop=True), features)
    train, test = D.train_test(data, seed=1)  # standardisation lives in the encoder too
    assert abs(train.X[:, 0].mean()) < 1e-5 and train.encoder.mean[0] != 0
    back = pd.concat([train.to_frame(), test.to_frame()]).sort_index()
    pd.testing.assert_frame_equal(back.drop(columns="income"), features.drop(columns="income"), check_names=False)
    np.testing.assert_allclose(back["income"], features["income"], rtol=1e-6)
    # one row, and a subset lacking levels, encode to the same layout and values
    np.testing.assert_array_equal(train.encoder.encode(features.iloc[[7]]), train.encoder.encode(features)[[7]])
    only_red = features[features.colour == "red"]
    np.testing.assert_array_equal(train.encoder.encode(only_red), train.encoder.encode(features)[only_red.index])
    # the label (a passthrough column) may come along
    assert train.encoder.encode(df).shape == (60, 8)


def test_ids_follow_rows_through_split_subset_train_test():
    df = frame().set_axis(np.arange(100, 160))
    data = dataset(df)
    np.testing.assert_array_equal(data.ids, np.arange(100, 160))
    train, test = D.train_test(data, seed=3)
    assert sorted(np.concatenate([train.ids, test.ids])) == list(range(100, 160))
    np.testing.assert_array_equal(train.X, train.encoder.encode(df.loc[train.ids]))
    sub = test.subset([2, 0])
    np.testing.assert_array_equal(sub.ids, test.ids[[2, 0]])
    assert list(sub.to_frame().index) == list(test.ids[[2, 0]])
    bal = data.balance(20, seed=2)
    np.testing.assert_array_equal(bal.X, data.encoder.encode(df.loc[bal.ids]))


def test_bad_frames_name_the_column():
    data = dataset()
    enc, df = data.encoder, frame().drop(columns="ok")
    cases = [
        (df.assign(extra=1), "unknown column.*extra"),
        (df.drop(columns="income"), "missing column.*income"),
        (df.assign(colour="purple"), "colour.*unseen level 'purple'"),
        (df.assign(grade="D"), "grade.*unseen level 'D'"),
        (df.assign(income=np.where(np.arange(60) == 3, np.nan, df.income)), "income.*missing values"),
        (df.assign(income="high"), "income.*dtype"),
        (df.assign(age=df.age + 0.5), "integer column 'age'.*fractional"),
    ]
    for bad, match in cases:
        with pytest.raises(ValueError, match=match):
            enc.encode(bad)
    with pytest.raises(ValueError, match="ordinal column 'grade'.*omits.*'A'"):
        D.from_frame(frame(), "ok", ordinal={"grade": ["C", "B"]})
    with pytest.raises(ValueError, match="integer feature 'age' has a fractional bound 17.5"):
        dataset(bounds={"age": (17.5, 80)})
    with pytest.raises(ValueError, match="label"):
        D.from_frame(frame(), "approved")


REAL = list(tabular.SPECS)


@pytest.mark.parametrize("name", REAL)
def test_real_loader_round_trip(name):
    spec = tabular.SPECS[name]
    if not any((d / spec.path).is_file() for d in D.data_dirs()):
        pytest.skip(f"data file {spec.path} not in {D.data_dirs()}")
    data = D.load(name)
    raw = tabular.read_csv(tabular.find_data_file(spec.path))
    features = (spec.clean(raw) if spec.clean else raw).drop(columns=[spec.label, *spec.drop])
    back = data.to_frame()
    np.testing.assert_array_equal(back.index, features.index)
    continuous = [c.name for c in data.encoder.columns if c.kind == "continuous"]
    exact = [c for c in features.columns if c not in continuous]
    pd.testing.assert_frame_equal(back[exact], features[exact], check_names=False)  # levels, integers, dtypes
    for c in continuous:  # X is float32: continuous values come back to float32 precision
        np.testing.assert_allclose(back[c].to_numpy(float), features[c].to_numpy(float), rtol=2e-7, atol=1e-30)
    np.testing.assert_array_equal(data.encoder.encode(features.iloc[[5]]), data.X[[5]])
    for c in data.encoder.columns:  # a subset lacking some levels keeps the layout
        if c.kind == "categorical":
            keep = features[c.name] == c.levels[0]
            np.testing.assert_array_equal(data.encoder.encode(features[keep]), data.X[keep.to_numpy()])


# --------------------------------------------------------------------------- integer grid
def test_projection_rounds_on_the_raw_scale():
    # raw = 10 + 2·x for column 0 (integer, increase), column 1 continuous, column 2 integer immutable
    c = cfx.Constraints(
        mutability=["increase", "both", "none"],
        lower=[-5.0, -9.0, -9.0],
        upper=[2.0, 9.0, 9.0],
        integer_features=[0, 2],
        raw_offset=[10.0, 0.0, 0.0],
        raw_scale=[2.0, 1.0, 1.0],
    ).resolve(3)
    x = jnp.array([[0.5, 0.0, 1.0]])  # raw age 11
    cf = jnp.array([[1.3, 0.37, 4.2], [0.2, 0.1, 1.0], [7.0, 0.0, 1.0]])
    out = np.asarray(jax.jit(lambda a, b: c.project(a, b, one_hot=True))(cf, x))
    np.testing.assert_allclose(out[:, 0] * 2 + 10, [13.0, 11.0, 14.0])  # 12.6 -> 13; below x -> x; bound 14
    np.testing.assert_array_equal(out[:, 1], np.asarray(cf[:, 1]))  # continuous untouched
    np.testing.assert_array_equal(out[:, 2], 1.0)  # immutable bit for bit
    relaxed = np.asarray(jax.jit(c.project)(cf, x))
    assert relaxed[0, 0] == pytest.approx(1.3)  # relaxed during the search
    # no integer features: the resolved tree is what it was, so the compiled search is unchanged
    plain = cfx.Constraints(mutability=["both"] * 3).resolve(3)
    schema = D.FeatureSchema(
        ("a", "b", "c"),
        ("both",) * 3,
        (-np.inf,) * 3,
        (np.inf,) * 3,
        kinds=("continuous",) * 3,
        raw_offset=(1.0,) * 3,
        raw_scale=(2.0,) * 3,
    )
    resolved = schema.constraints().resolve(3)
    assert jax.tree_util.tree_structure(resolved) == jax.tree_util.tree_structure(plain)
    assert resolved.integer_features == () and not resolved.snaps


def test_search_done_only_when_the_rounded_point_is_valid():
    """Logit 4·(raw − 10.3) on an integer feature raw = 10 + 2·x: the relaxed search crosses at
    raw 10.3 (rounds to 10: invalid); with the grid it must go on to raw 11."""
    clf = cfx.Classifier(
        lambda p, x: (x @ p["w"] + p["b"])[:, None], {"w": jnp.array([8.0, 0.0]), "b": jnp.float32(-1.2)}, n_features=2
    )
    x = np.array([[-1.0, 0.0], [-0.5, 0.0]], np.float32)  # raw 8 and 9
    gen = cfx.generators.Generic(learning_rate=0.01, cost=0.0)
    common = dict(lower=-5.0, upper=5.0)
    grid = cfx.Constraints(integer_features=[0], raw_offset=[10.0, 0.0], raw_scale=[2.0, 1.0], **common)
    res = cfx.generate(gen, clf, x, 1, key=jax.random.key(0), constraints=grid, max_steps=300)
    raw = np.asarray(res.counterfactuals[:, 0, 0]) * 2 + 10
    np.testing.assert_array_equal(raw, [11.0, 11.0])
    assert np.all(np.asarray(res.converged)) and np.all(np.asarray(res.target_probs) >= 0.5)
    relaxed = cfx.generate(gen, clf, x, 1, key=jax.random.key(0), constraints=cfx.Constraints(**common), max_steps=300)
    raw_relaxed = np.asarray(relaxed.counterfactuals[:, 0, 0]) * 2 + 10
    assert np.all((raw_relaxed > 10.3) & (raw_relaxed < 10.5))  # what rounding after the fact would break
    assert np.all(np.asarray(clf.probs(np.column_stack([(np.round(raw_relaxed) - 10) / 2, [0, 0]])))[:, 1] < 0.5)


# --------------------------------------------------------------------------- Classifier.probs buckets
def test_probs_compiles_per_bucket_not_per_batch_size():
    w = jnp.arange(6.0).reshape(3, 2) / 5
    clf = cfx.Classifier(lambda p, x: x @ p, w, n_features=3)
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    before = compile_counts.classifier()
    logits = x @ np.asarray(w)
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    for n in range(1, 41):
        np.testing.assert_allclose(np.asarray(clf.probs(x[:n])), expected[:n], rtol=1e-5)
    assert compile_counts.classifier() - before == 4  # buckets 8, 16, 32, 64: not 40 programs
    assert clf.predict_proba(x[:5]).shape == (5, 2) and isinstance(clf.predict_proba(x[0]), np.ndarray)
    assert np.asarray(clf.probs(x[0])).shape == (2,) and int(clf.predict(x[0])) == int(np.argmax(x[0] @ w))
    assert classifier_module.bucket(1) == 8 and classifier_module.bucket(33) == 64
    with pytest.raises(ValueError, match=r"x must have shape \(3,\)"):
        clf.probs(np.zeros((4, 2)))

"""FeatureTweak (Tolomei et al. 2017) on scikit-learn tree ensembles: valid, constraints honoured,
and the cheapest candidate that a plain per-tree, per-leaf loop over sklearn's own trees finds."""

from __future__ import annotations

import importlib

import jax
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

import cfx
from cfx.generators import FeatureTweak

KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def forest_problem():
    X, y = make_classification(400, 5, n_informative=3, n_redundant=0, random_state=1)
    X = X.astype(np.float32)
    forest = RandomForestClassifier(12, max_depth=4, random_state=0).fit(X[:300], y[:300])
    rows = X[300:][forest.predict(X[300:]) == 0][:12]
    return forest, cfx.models.from_sklearn(forest), rows


def _reference(forest, x, target, eps):
    """The paper's loop, on sklearn's trees directly: every leaf of y⁺ in a tree voting not y⁺
    gives its ε-satisfying point; the cheapest (L2) that the forest's predict_proba flips."""
    best, best_cost = None, np.inf
    for est in forest.estimators_:
        tree = est.tree_
        if np.argmax(tree.value[est.apply(x[None])[0], 0]) == target:
            continue
        stack = [(0, x.astype(np.float64).copy(), [])]
        while stack:
            node, _, conds = stack.pop()
            if tree.children_left[node] == -1:
                if np.argmax(tree.value[node, 0]) != target:
                    continue
                lo, hi = np.full(len(x), -np.inf), np.full(len(x), np.inf)
                for f, t, left in conds:
                    t32 = np.float32(t) if np.float32(t) <= t else np.nextafter(np.float32(t), np.float32(-np.inf))
                    hi[f], lo[f] = (min(hi[f], t32), lo[f]) if left else (hi[f], max(lo[f], t32))
                e = np.minimum(eps, (hi - lo) / 2)
                cand = np.where(x > hi, hi - e, np.where(x <= lo, lo + e, x)).astype(np.float32)
                if forest.predict_proba(cand[None])[0, target] >= 0.5:
                    cost = np.linalg.norm(cand - x)
                    if cost < best_cost:
                        best, best_cost = cand, cost
                continue
            f, t = tree.feature[node], tree.threshold[node]
            stack += [
                (tree.children_left[node], None, conds + [(f, t, True)]),
                (tree.children_right[node], None, conds + [(f, t, False)]),
            ]
    return best, best_cost


def test_feature_tweak_is_valid_and_matches_the_plain_loop(forest_problem):
    forest, clf, rows = forest_problem
    res = cfx.generate(FeatureTweak(), clf, rows, target=1, key=KEY)
    cf = np.asarray(res.counterfactuals)[:, 0]
    converged = np.asarray(res.outcome)[:, 0] == cfx.OUTCOMES.index("converged")
    assert converged.all() and (np.asarray(res.steps) == 1).all()
    assert (forest.predict(cf) == 1).all()  # valid by sklearn's own forest
    for i in range(4):
        expected, cost = _reference(forest, rows[i], 1, 0.1)
        assert np.linalg.norm(cf[i] - rows[i]) == pytest.approx(cost, rel=1e-5)
        np.testing.assert_allclose(cf[i], expected, atol=1e-6)


def test_feature_tweak_honours_constraints(forest_problem):
    forest, clf, rows = forest_problem
    lower, upper = rows.min(0) - 1.0, rows.max(0) + 1.0
    constraints = cfx.Constraints(
        mutability=["none", "both", "increase", "decrease", "both"], lower=lower.tolist(), upper=upper.tolist()
    )
    res = cfx.generate(FeatureTweak(num_counterfactuals=3), clf, rows, target=1, key=KEY, constraints=constraints)
    cf = np.asarray(res.counterfactuals)
    x = rows[:, None, :]
    assert np.array_equal(cf[..., 0], np.broadcast_to(x[..., 0], cf.shape[:2]))  # immutable: untouched
    assert (cf[..., 2] >= x[..., 2]).all() and (cf[..., 3] <= x[..., 3]).all()
    assert (cf >= lower).all() and (cf <= upper).all()
    converged = np.asarray(res.outcome) == cfx.OUTCOMES.index("converged")
    assert converged[:, 0].mean() >= 0.5
    assert (forest.predict(cf[converged]) == 1).all()
    costs = np.linalg.norm(cf - x, axis=-1)
    assert (np.diff(costs[converged.all(1)], axis=1) >= -1e-6).all()  # the K cheapest, in order


def test_feature_tweak_on_gradient_boosting():
    X, y = make_classification(300, 4, n_informative=3, n_redundant=0, random_state=2)
    X = X.astype(np.float32)
    gb = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0).fit(X[:200], y[:200])
    clf = cfx.models.from_sklearn(gb)
    rows = X[200:][gb.predict(X[200:]) == 1][:10]
    res = cfx.generate(FeatureTweak(), clf, rows, target=0, key=KEY)
    converged = np.asarray(res.outcome)[:, 0] == cfx.OUTCOMES.index("converged")
    assert converged.mean() >= 0.8
    assert (gb.predict(np.asarray(res.counterfactuals)[converged, 0]) == 0).all()


def test_feature_tweak_needs_a_tree_ensemble(forest_problem, linear_classifier):
    forest, _, rows = forest_problem
    with pytest.raises(TypeError, match="FeatureTweak needs a tree ensemble.*from_sklearn"):
        cfx.generate(FeatureTweak(), linear_classifier, np.zeros((2, 2), np.float32), target=1, key=KEY)
    black_box = cfx.models.from_predict_proba(forest.predict_proba, 5, 2)
    with pytest.raises(TypeError, match="FeatureTweak needs a tree ensemble"):
        cfx.generate(FeatureTweak(), black_box, rows[:2], target=1, key=KEY)
    with pytest.raises(ValueError, match="FeatureTweak.epsilon must be finite and > 0"):
        cfx.generate(FeatureTweak(epsilon=0.0), cfx.models.from_sklearn(forest), rows[:2], target=1, key=KEY)


def test_feature_tweak_through_explain(monkeypatch):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"income": rng.normal(50, 10, 300), "debt": rng.normal(20, 5, 300), "age": rng.integers(20, 70, 300)}
    )
    frame["approved"] = (frame["income"] - frame["debt"] + rng.normal(0, 3, 300) > 30).astype(int)
    train, _ = cfx.data.train_test(cfx.data.from_frame(frame, "approved", mutability={"age": "none"}), seed=0)
    forest = RandomForestClassifier(20, max_depth=5, random_state=0).fit(np.asarray(train.X), np.asarray(train.y))
    rows = train.to_frame()[forest.predict(np.asarray(train.X)) == 0].head(8)
    module = importlib.import_module("cfx.explain")
    thresholds = []

    def spy(generator, *args, **kwargs):
        thresholds.append(generator.threshold)  # τ rides on the generator (generate's options moved there)
        return cfx.search.generate(generator, *args, **kwargs)

    monkeypatch.setattr(module, "generate", spy)
    out = cfx.explain(cfx.models.from_sklearn(forest), rows, data=train, generator=FeatureTweak(), target=1)
    assert thresholds == [0.5]  # exact: searched at τ, not at explain's search threshold (0.75)
    assert out["valid"].all() and (out["outcome"] == "converged").all()
    assert (out["age"].to_numpy() == rows["age"].to_numpy()).all()  # immutable by name
    encoded = train.encoder.encode(out[list(rows.columns.drop("approved", errors="ignore"))])
    assert (forest.predict(encoded) == 1).all()


def test_feature_tweak_switches_a_one_hot_level():
    """Approval depends on the level of a categorical column only: a leaf that needs level c on
    must get c (its ε-point 0.5 + ε beside the factual's 1 would snap back to the factual's level)."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"income": rng.normal(50, 10, 300), "job": rng.choice(["a", "b", "c", "d"], 300)})
    frame["approved"] = (frame["job"] == "c").astype(int)
    train, _ = cfx.data.train_test(cfx.data.from_frame(frame, "approved", categorical=["job"]), seed=0)
    stump = DecisionTreeClassifier(max_depth=1).fit(np.asarray(train.X), np.asarray(train.y))  # job_c <= 0.5 ?
    rows = train.to_frame()[stump.predict(np.asarray(train.X)) == 0].head(6)
    out = cfx.explain(cfx.models.from_sklearn(stump), rows, data=train, generator=FeatureTweak(), target=1)
    assert out["valid"].all() and (out["job"] == "c").all()


def test_feature_tweak_on_xgboost_trees():
    xgb = pytest.importorskip("xgboost")  # not a cfx dependency: skipped where it is not installed
    X, y = make_classification(300, 4, n_informative=3, n_redundant=0, random_state=3)
    X = X.astype(np.float32)
    model = xgb.XGBClassifier(n_estimators=15, max_depth=3, n_jobs=1, random_state=0).fit(X[:200], y[:200])
    clf = cfx.models.from_sklearn(model)
    # points exactly on a split and one float32 below it: XGBoost sends x < s left
    tree = __import__("json").loads(bytes(model.get_booster().save_raw("json")))["learner"]["gradient_booster"]
    root = tree["model"]["trees"][0]
    s, f = np.float32(root["split_conditions"][0]), root["split_indices"][0]
    edge = np.repeat(X[200:202], 2, axis=0)
    edge[[0, 2], f], edge[[1, 3], f] = s, np.nextafter(s, np.float32(-np.inf))
    held = np.concatenate([X[200:], edge])
    np.testing.assert_array_equal(np.asarray(clf.predict(held)), model.predict(held))
    np.testing.assert_allclose(np.asarray(clf.probs(held))[:, 1], model.predict_proba(held)[:, 1], atol=1e-5)
    rows = X[200:][model.predict(X[200:]) == 0][:10]
    res = cfx.generate(FeatureTweak(), clf, rows, target=1, key=KEY)
    converged = np.asarray(res.outcome)[:, 0] == cfx.OUTCOMES.index("converged")
    assert converged.mean() >= 0.8
    assert (model.predict(np.asarray(res.counterfactuals)[converged, 0]) == 1).all()

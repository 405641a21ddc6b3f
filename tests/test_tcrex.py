"""T-CREx: rules, maximal-valid rules, grid, metarules, local points and the global table."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

import cfx
from cfx.data.dataset import Dataset, FeatureSchema
from cfx.generators.tcrex import TCREx, fit_rules, inside, maximal, rule_costs, rule_stats

KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def moons():
    """The worked example of CounterfactualExplanations.jl's T-CREx docs (after Bewley et al.):
    make_moons(5000, noise=0.3, random_state=0), the labels as an oracle model, ρ = 0.02, τ = 0.9."""
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=5000, noise=0.3, random_state=0)
    return X.astype(np.float32), y


def test_worked_example_matches_the_reference_implementation(moons):
    X, y = moons
    rs = fit_rules(X, y == 1, rho=0.02, tau=0.9)
    # CE.jl v1.4.3's rendered figures of this example: 4 maximal-valid rules, a 20-cell grid, 9 metarules
    assert (len(rs.lower), rs.cells, len(rs.meta_rule)) == (4, 20, 9)
    # one of its rules, read off its figure (±0.005, the figure's pixel): x0 > 1.432 and x1 > 0.301
    np.testing.assert_allclose(rs.lower[np.argmax(rs.lower[:, 1])], [1.432, 0.301], atol=0.005)
    feas, acc, _ = rule_stats(X, y == 1, rs.lower, rs.upper)
    np.testing.assert_allclose(feas, rs.feasibility)
    assert np.all(acc >= 0.9) and np.all(feas >= 0.02)
    # maximal: no rule contains another
    assert maximal(rs.lower, rs.upper, np.ones(4, bool)).all()
    # the metarules tile the plane: every row in exactly one
    assert np.all(inside(X, rs.meta_lower, rs.meta_upper).sum(1) == 1)


def test_metarule_lookup_equals_the_cheapest_rule_on_the_data(moons):
    X, y = moons
    data = Dataset(X, y, FeatureSchema.default(2))
    gen = TCREx().fit(None, data, key=KEY)  # no classifier: the data's labels
    target = np.ones(len(X), np.int32)
    looked_up, _ = gen.choose(X, target, np.zeros(2, np.int32), 1, skip_inside=False)
    optimal, _ = gen.replace(assign="optimal").choose(X, target, np.zeros(2, np.int32), 1, skip_inside=False)
    rs = fit_rules(X, y == 1, rho=0.02, tau=0.9)
    cost = rule_costs(X, rs.lower, rs.upper, rs.feasibility)
    # ties in cost aside, the metarules (fitted on one prototype per cell) give each row its cheapest rule
    chosen = cost[np.arange(len(X)), np.asarray(looked_up[:, 0])]
    np.testing.assert_allclose(chosen, cost.min(1))
    np.testing.assert_allclose(cost[np.arange(len(X)), np.asarray(optimal[:, 0])], cost.min(1))


def _step_problem():
    """Model: class 1 iff x0 > 0; x1 is noise. The one rule for class 1 is x0 > ~0."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(400, 2)).astype(np.float32)
    clf = cfx.Classifier(lambda p, x: x[:, :1] * p["w"], {"w": np.float32(20.0)}, n_features=2)
    return X, clf


def test_local_point_changes_only_the_features_outside_the_rule_and_respects_mutability():
    X, clf = _step_problem()
    data = Dataset(X, np.asarray(clf.predict(X)), FeatureSchema.default(2))
    gen = TCREx(rho=0.05).fit(clf, data, key=KEY)
    x = np.array([[-1.5, 0.7], [-0.5, -1.2]], np.float32)
    res = cfx.generate(gen, clf, x, 1, key=KEY)
    cf = np.asarray(res.counterfactuals[:, 0])
    np.testing.assert_array_equal(cf[:, 1], x[:, 1])  # x1 is inside the rule already: untouched
    assert np.all(cf[:, 0] > 0) and bool(res.converged.all())
    # x0 immutable: no allowed rule, the factual comes back unchanged (not a silent success)
    res = cfx.generate(gen, clf, x, 1, key=KEY, constraints=cfx.Constraints(mutability=["none", "both"]))
    np.testing.assert_array_equal(np.asarray(res.counterfactuals[:, 0]), x)
    assert not bool(res.converged.any())


def test_explain_global_reports_rules_in_raw_units():
    X, clf = _step_problem()
    raw = X * np.float32(100.0) + np.float32(50.0)  # a raw scale, standardised for the model
    data = Dataset(raw, np.asarray(clf.predict(X)), FeatureSchema.default(2, ["income", "age"])).standardize()
    model = cfx.Classifier(lambda p, x: x[:, :1] * p["w"], {"w": np.float32(20.0)}, n_features=2)
    factuals = data.X[np.asarray(model.predict(data.X)) == 0][:20]
    frame, gen = cfx.explain_global(model, data, target=1, rho=0.05, factuals=factuals, return_generator=True)
    assert list(frame.columns[:5]) == ["rule", "conditions", "accuracy", "feasibility", "n_conditions"]
    row = frame.iloc[int(np.argmax(frame["feasibility"]))]
    std = data.standardizer
    expected = std.mean[0] + std.scale[0] * float(np.asarray(gen.rule_lower[1])[row["rule"], 0])
    assert row["lower:income"] == pytest.approx(expected, rel=1e-5)
    assert row["conditions"].startswith("income > ") and row["accuracy"] >= 0.9
    assert frame["assigned"].sum() == pytest.approx(1.0) and frame["validity"].max() == 1.0
    meta = cfx.global_rules.metarules_frame(gen, data, 1)
    assert set(meta["rule"]) <= set(frame["rule"])


@pytest.mark.parametrize(
    "options, match",
    [
        ({"rho": 0.0}, "TCREx.rho"),
        ({"tau": 1.5}, "TCREx.tau"),
        ({"assign": "best"}, "TCREx.assign"),
        ({"point": "x"}, "TCREx.point"),
    ],
)
def test_bad_options_name_the_option(options, match):
    X, clf = _step_problem()
    with pytest.raises(ValueError, match=match):
        TCREx(**options).fit(clf, X, key=KEY)


def test_unfitted_generator_is_refused_before_compiling():
    X, clf = _step_problem()
    with pytest.raises(ValueError, match="TCREx has no rules: fit it first"):
        cfx.generate(TCREx(), clf, X[:2], 1, key=KEY)
    with pytest.raises(ValueError, match="target must be a class index"):
        cfx.global_rules.rules_frame(TCREx().fit(clf, X, key=KEY), None, target=2)


def test_config_path_writes_rules_in_raw_units(tmp_path):
    """configs/tcrex_smoke.yaml (kind benchmark): T-CREx as a generator, rules.csv from its cells."""
    import pandas as pd

    from cfx.experiments import load_config, run

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "tcrex_smoke.yaml", output=tmp_path / "out")
    report = run(cfg, progress=False)
    tmp_path = tmp_path / "out"
    rules = pd.read_csv(tmp_path / "rules.csv")
    assert {
        "dataset",
        "model",
        "generator",
        "run",
        "target",
        "conditions",
        "accuracy",
        "feasibility",
        "assigned",
        "validity",
    } <= set(rules.columns)
    assert (rules["generator"] == "tcrex").all() and (rules["accuracy"] >= 0.9).all()
    assert "tcrex" in set(report.summary_table["generator"])


def test_rule_metrics_closed_form():
    from cfx.evaluation import get_metric
    from cfx.evaluation.rules import rule_metrics

    # rule 0: x0 > 0 (one term); rule 1: x0 > 0 and x1 <= 1 (two terms)
    lower = np.array([[0.0, -np.inf], [0.0, -np.inf]])
    upper = np.array([[np.inf, np.inf], [np.inf, 1.0]])
    X = np.array([[1.0, 0.0], [2.0, 2.0], [-1.0, 0.0], [3.0, 0.5]])
    hit = np.array([True, False, False, True])
    x = np.array([[-1.0, 5.0], [-2.0, 0.0], [0.5, 3.0]])
    m = rule_metrics(x, lower, upper, np.array([1, 0, -1]), X, hit)
    np.testing.assert_allclose(m["rule_accuracy"], [1.0, 2 / 3, np.nan])  # rule 1 holds rows 0, 3; rule 0 rows 0, 1, 3
    np.testing.assert_allclose(m["rule_feasibility"], [0.5, 0.75, np.nan])
    np.testing.assert_allclose(m["rule_changes"], [2.0, 1.0, np.nan])  # x outside on both / on x0
    np.testing.assert_allclose(m["rule_complexity"], [2.0, 1.0, np.nan])
    assert m["rule_consistency"] == 1.0  # two factuals, two distinct rules
    assert rule_metrics(x[:2], lower, upper, np.array([0, 0]), X, hit)["rule_consistency"] == 0.5
    assert get_metric("rule_changes").level == "population"
    none = rule_metrics(x, lower[:0], upper[:0], np.full(3, -1), X, hit)  # no rule: every value NaN
    assert all(np.isnan(v).all() for v in none.values())
    with pytest.raises(ValueError, match="assigned"):
        rule_metrics(x, lower, upper, np.array([2, 0, 0]), X, hit)


def test_rule_metrics_agree_with_the_fitted_rules(moons):
    from cfx.evaluation.rules import rule_accuracy, rule_feasibility

    X, y = moons
    rs = fit_rules(X, y == 1, rho=0.02, tau=0.9)
    every = np.arange(len(rs.lower))
    np.testing.assert_allclose(rule_accuracy(rs.lower, rs.upper, every, X, y == 1), rs.accuracy, rtol=1e-6)
    np.testing.assert_allclose(rule_feasibility(rs.lower, rs.upper, every, X), rs.feasibility, rtol=1e-6)


def test_rf_ocse_credit_preprocessing():
    """experiments/tcrex_paper.py rebuilds RF-OCSE's Credit (load_credit of rrunix/libfastcrf)."""
    import sys

    from cfx.data.tabular import data_dirs

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    try:
        from tcrex_paper import _streaks, load_credit
    finally:
        sys.path.pop(0)
    overdue = np.array([[0, 1, 1, 0, 1, 0], [0] * 6, [1] * 6], bool)
    np.testing.assert_array_equal(_streaks(overdue), [2, 0, 1])  # runs of overdue months
    path = next(
        (
            d / "recourse/taiwan_credit_default.csv"
            for d in data_dirs()
            if (d / "recourse/taiwan_credit_default.csv").is_file()
        ),
        None,
    )
    if path is None:
        pytest.skip("recourse/taiwan_credit_default.csv not in the data directories")
    X, y, names = load_credit(str(path))
    assert X.shape == (29623, 14) and len(names) == 14 and names[2] == "AgeGroup"
    assert abs(y.mean() - 0.779) < 0.001  # 1 = no default
    assert set(np.unique(X[:, 2])) == {1, 2, 3, 4} and set(np.unique(X[:, 0])) == {0, 1}


def test_leaf_candidates_are_smaller_rules_inside_the_node_rules(moons):
    X, y = moons
    nodes = fit_rules(X, y == 1, rho=0.02, tau=0.9)
    leaves = fit_rules(X, y == 1, rho=0.02, tau=0.9, candidates="leaves")
    assert len(leaves.lower) > len(nodes.lower) and leaves.feasibility.max() < nodes.feasibility.max()
    # every valid leaf lies in a maximal-valid node rule (its ancestors include one)
    inner = np.all((leaves.lower[:, None] >= nodes.lower[None]) & (leaves.upper[:, None] <= nodes.upper[None]), -1)
    assert inner.any(1).all()
    with pytest.raises(ValueError, match="TCREx.candidates"):
        TCREx(candidates="roots").check_options()

"""cfx.evaluate: closed forms on hand-made results with a plain-JAX linear classifier."""

from __future__ import annotations

import dataclasses
import re

import jax.numpy as jnp
import numpy as np
import pytest

from cfx.classifier import Classifier
from cfx.constraints import Constraints
from cfx.data.dataset import Dataset, FeatureSchema
from cfx.evaluation import batching, evaluate, list_metrics, summary_table
from cfx.search import CounterfactualResult


def linear(w, b) -> Classifier:
    """Binary linear model: logits [0, w·x + b], so p(1|x) = sigmoid(w·x + b)."""
    w = jnp.asarray(w, jnp.float32)
    params = {"W": jnp.stack([jnp.zeros_like(w), w], axis=1), "b": jnp.asarray([0.0, b], jnp.float32)}
    return Classifier(lambda p, x: x @ p["W"] + p["b"], params, n_features=w.shape[0])


def make_result(factuals, counterfactuals, target, *, threshold=0.5, runtime_s=0.0, compile_s=0.0):
    """A CounterfactualResult by hand; target_probs deliberately garbage (must not be used)."""
    x = jnp.asarray(factuals, jnp.float32)
    cf = jnp.asarray(counterfactuals, jnp.float32)
    if cf.ndim == 2:
        cf = cf[:, None, :]
    n, K, _ = cf.shape
    return CounterfactualResult(
        factuals=x,
        target=jnp.broadcast_to(jnp.asarray(target, jnp.int32), (n,)),
        counterfactuals=cf,
        outcome=jnp.asarray(np.arange(n * K).reshape(n, K) % 2, jnp.int32),  # even: converged (0)
        steps=jnp.arange(n * K).reshape(n, K),
        target_probs=jnp.full((n, K), -1.0),
        terms={},
        threshold=threshold,
        runtime_s=runtime_s,
        compile_s=compile_s,
    )


def dataset(X, y, schema=None) -> Dataset:
    X = np.asarray(X, np.float32)
    return Dataset(X, np.asarray(y, np.int32), schema or FeatureSchema.default(X.shape[1]))


# classifier used by several tests: p(1|x) = sigmoid(x0 + x1 - 1); x2 is irrelevant
CLF = linear([1.0, 1.0, 0.0], -1.0)


def test_per_factual_is_a_deprecated_alias_of_per_counterfactual():
    out = evaluate(make_result(np.zeros((2, 3)), np.ones((2, 3)), 1), CLF)
    assert out["per_counterfactual"]["l1"].shape == (2, 1)
    with pytest.warns(DeprecationWarning, match="per_counterfactual"):
        old = out["per_factual"]
    assert old is out["per_counterfactual"]
    with pytest.warns(DeprecationWarning):
        assert out.get("per_factual") is old


def test_distances_closed_form():
    x = np.zeros((1, 4))
    cf = np.array([[1.0, -2.0, 0.0, 2e-6]])  # the last change is below the 1e-5 tolerance
    pf = evaluate(make_result(x, cf, 1), linear([1, 1, 0, 0], -1.0))["per_counterfactual"]
    assert pf["l0"][0, 0] == 2
    np.testing.assert_allclose(pf["l1"][0, 0], 3.0, atol=1e-5)
    np.testing.assert_allclose(pf["l2"][0, 0], np.sqrt(5.0), rtol=1e-6)  # true L2, not 5
    np.testing.assert_allclose(pf["linf"][0, 0], 2.0)
    np.testing.assert_allclose(pf["redundancy"][0, 0], 0.5)  # 2 of 4 features unchanged


def test_redundancy_carla_by_hand():
    # logit x0 + x1 - 1. Reverting a feature to 0 keeps the label iff the rest stays > 1.
    x = np.zeros((5, 3))
    cf = np.array(
        [
            [2.0, 2.0, 0.5],  # logit 3: each single revert leaves logit >= 1 -> 3 redundant
            [0.6, 0.6, 0.0],  # logit 0.2: reverting x0 or x1 flips -> 0
            [2.0, 0.5, 0.0],  # revert x0 -> -0.5 flips; revert x1 -> 1.0 keeps -> 1
            [0.0, 1.5, 3.0],  # revert x1 flips; x2 is irrelevant -> 1
            [0.2, 0.0, 0.0],  # not label-valid -> NaN (CARLA drops invalid counterfactuals)
        ]
    )
    out = evaluate(make_result(x, cf, 1), CLF)
    got = out["per_counterfactual"]["redundancy_carla"][:, 0]
    np.testing.assert_array_equal(got[:4], [3, 0, 1, 1])
    assert np.isnan(got[4])
    np.testing.assert_allclose(out["mean"]["redundancy_carla"], 5 / 4)  # NaN-aware mean
    # CE.jl redundancy counts unchanged features regardless of validity
    np.testing.assert_allclose(
        out["per_counterfactual"]["redundancy"][:, 0], [0, 1 / 3, 1 / 3, 1 / 3, 2 / 3], atol=1e-6
    )


def test_validity_uses_classifier_and_threshold():
    x = np.zeros((3, 3))
    cf = np.array([[0.6, 0.6, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # logits 0.2, 1, -1
    p = 1 / (1 + np.exp(-np.array([0.2, 1.0, -1.0])))
    res = make_result(x, cf, 1, threshold=0.5)
    pf = evaluate(res, CLF)["per_counterfactual"]
    np.testing.assert_allclose(pf["target_prob"][:, 0], p, rtol=1e-6)
    np.testing.assert_array_equal(pf["validity"][:, 0], [1, 1, 0])
    np.testing.assert_array_equal(pf["label_validity"][:, 0], [1, 1, 0])
    # tau = 0.6 > p = 0.55: no longer valid, though the label still is the target
    out = evaluate(dataclasses.replace(res, threshold=0.6), CLF)
    np.testing.assert_array_equal(out["per_counterfactual"]["validity"][:, 0], [0, 1, 0])
    np.testing.assert_array_equal(out["per_counterfactual"]["label_validity"][:, 0], [1, 1, 0])
    assert out["mean"]["threshold"] == 0.6
    # the same result under a new model (flipped sign): validity is re-evaluated
    flipped = CLF.replace(jax_tree_neg(CLF.params))
    np.testing.assert_array_equal(evaluate(res, flipped)["per_counterfactual"]["validity"][:, 0], [0, 0, 1])
    # target 0 is judged against p(0|x')
    pf0 = evaluate(make_result(x, cf, 0), CLF)["per_counterfactual"]
    np.testing.assert_allclose(pf0["target_prob"][:, 0], 1 - p, rtol=1e-5)


def jax_tree_neg(params):
    return {k: -v for k, v in params.items()}


def test_new_params_do_not_recompile():
    x = np.zeros((3, 3))
    cf = np.array([[0.6, 0.6, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    res = make_result(x, cf, 1)
    evaluate(res, CLF)
    before = batching.map_metrics._cache_size()
    evaluate(res, CLF.replace(jax_tree_neg(CLF.params)))
    evaluate(dataclasses.replace(res, threshold=0.7), CLF)
    assert batching.map_metrics._cache_size() == before


def brute_force_implausibility(cf, target, X, y, k):
    out = []
    for q, t in zip(cf, target):
        d = np.sort(np.linalg.norm(X[y == t] - q, axis=1))
        out.append(d[:k].mean())
    return np.array(out)


@pytest.fixture(scope="module")
def random_problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)).astype(np.float32)
    y = (rng.random(300) < 0.4).astype(np.int32)  # ~120 of class 1, ~180 of class 0
    n, K = 6, 2
    x = rng.normal(size=(n, 3))
    cf = rng.normal(size=(n, K, 3))
    target = np.array([0, 1, 1, 0, 1, 0])
    return dataset(X, y), make_result(x, cf, target)


@pytest.mark.parametrize("k", [100, 250])  # 250 > class sizes: all points of the class are used
def test_implausibility_matches_brute_force(random_problem, k):
    data, res = random_problem
    got = evaluate(res, CLF, data=data, n_neighbors=k)["per_counterfactual"]["implausibility"]
    cf = np.asarray(res.counterfactuals).reshape(-1, 3)
    t = np.repeat(np.asarray(res.target), 2)
    want = brute_force_implausibility(cf, t, data.X, data.y, k)
    np.testing.assert_allclose(got.ravel(), want, rtol=1e-5)


def test_chunked_equals_unchunked(random_problem, monkeypatch):
    data, res = random_problem
    full = evaluate(res, CLF, data=data)["per_counterfactual"]
    monkeypatch.setattr(batching, "CHUNK_ELEMENTS", 700)  # 1-2 queries per chunk, with a remainder
    monkeypatch.setattr(batching, "MODEL_ROWS", 9)  # 2 counterfactuals (x 4 rows) per chunk
    assert batching.chunk_size(12, 300) == 2 and batching.chunk_size(12, 12, 4) == 2
    chunked = evaluate(res, CLF, data=data)["per_counterfactual"]
    for name in full:
        np.testing.assert_allclose(chunked[name], full[name], rtol=1e-6, err_msg=name)


def test_ynn_and_implausibility_on_a_line():
    # data: x0 = 0..9 on a line; the model predicts 1 iff x0 > 4.5; true labels are the opposite
    X = np.stack([np.arange(10.0), np.zeros(10)], axis=1)
    clf = linear([1.0, 0.0], -4.5)
    data = dataset(X, (np.arange(10) < 5).astype(int))
    cf = np.array([[7.0, 0.0], [4.6, 0.0], [0.2, 0.0], [4.6, 0.0]])
    res = make_result(np.zeros((4, 2)), cf, [1, 1, 1, 0])
    out = evaluate(res, clf, data=data, n_neighbors=2)
    # 5-NN of 7: {7,6,8,5,9} all predicted 1; of 4.6: {5,4,6,3,7} -> 3 of 5 predicted 1;
    # of 0.2: {0..4} all predicted 0; target 0 at 4.6: 2 of 5.
    np.testing.assert_allclose(out["per_counterfactual"]["ynn"][:, 0], [1.0, 0.6, 0.0, 0.4], atol=1e-6)
    np.testing.assert_allclose(out["mean"]["ynn"], 2.0 / 4, atol=1e-6)
    # implausibility: 2 nearest points with *true* label 1 (x0 in 0..4)
    np.testing.assert_allclose(out["per_counterfactual"]["implausibility"][:, 0], [3.5, 1.1, 0.5, 0.9], atol=1e-5)


def test_implausibility_nan_without_target_class_points():
    X = np.arange(8.0).reshape(4, 2)
    data = dataset(X, [0, 0, 0, 0])
    out = evaluate(make_result(np.zeros((1, 2)), [[1.0, 1.0]], 1), linear([1.0, 1.0], 0.0), data=data)
    assert np.isnan(out["per_counterfactual"]["implausibility"][0, 0])
    assert np.isnan(out["mean"]["implausibility"]) and np.isnan(out["sd"]["implausibility"])


VIOLATION_CONSTRAINTS = Constraints(
    mutability=["none", "increase", "decrease", "both", "both", "both", "both"],
    lower=[-np.inf, -np.inf, -np.inf, -1.0, -np.inf, -np.inf, -np.inf],
    upper=[np.inf, np.inf, np.inf, 1.0, np.inf, np.inf, np.inf],
    categorical_groups=[[4, 5], [6]],
)


def test_violations_each_kind():
    x = np.array([[0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0]] * 5)
    cf = np.array(
        [
            [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0],  # the factual itself: feasible
            [0.5, -0.1, 0.1, 2.0, 0.5, 0.5, 0.5],  # immutable 1, monotone 2, bounds 1, one-hot 2
            [0.0, 0.3, -0.3, -1.0, 0.0, 1.0, 0.0],  # bounds inclusive, group switched: feasible
            [1e-6, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0],  # immutable within tolerance; two hot -> 1
            [0.0, 0.0, 0.0, -1.5, 0.0, 0.0, 1.0],  # below bound, no hot column -> 2
        ]
    )
    clf = linear(np.ones(7), 0.0)
    pf = evaluate(make_result(x, cf, 1), clf, constraints=VIOLATION_CONSTRAINTS)["per_counterfactual"]
    col = lambda name: pf[name][:, 0]  # noqa: E731
    np.testing.assert_array_equal(col("immutable_changed"), [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(col("monotone_violated"), [0, 2, 0, 0, 0])
    np.testing.assert_array_equal(col("out_of_bounds"), [0, 1, 0, 0, 1])
    np.testing.assert_array_equal(col("invalid_onehot"), [0, 2, 0, 1, 1])
    np.testing.assert_array_equal(col("violations"), [0, 6, 0, 1, 2])


def test_violation_constraints_come_from_the_schema_or_nowhere():
    x = np.zeros((1, 7))
    x[0, [4, 6]] = 1.0
    cf = x.copy()
    cf[0, 0] = 1.0  # changes the immutable feature
    res = make_result(x, cf, 1)
    clf = linear(np.ones(7), 0.0)
    c = VIOLATION_CONSTRAINTS
    schema = FeatureSchema(tuple("abcdefg"), tuple(c.mutability), tuple(c.lower), tuple(c.upper), c.categorical_groups)
    data = dataset(np.tile(x, (4, 1)), [0, 1, 0, 1], schema)
    assert evaluate(res, clf, data=data)["per_counterfactual"]["immutable_changed"][0, 0] == 1
    assert evaluate(res, clf)["per_counterfactual"]["violations"][0, 0] == 0  # no constraints at all
    resolved = c.resolve(7)
    assert evaluate(res, clf, constraints=resolved)["per_counterfactual"]["violations"][0, 0] == 1


def test_mad_weighting():
    # MAD of [0..4] is 1, of [0, 2, .., 8] is 2, of a constant is 0 -> guarded to 1
    X = np.stack([np.arange(5.0), 2 * np.arange(5.0), np.full(5, 3.0)], axis=1)
    data = dataset(X, [0, 1, 0, 1, 0])
    res = make_result(np.zeros((2, 3)), [[1.0, 1.0, 1.0], [-2.0, 4.0, 0.0]], 1)
    pf = evaluate(res, CLF, data=data)["per_counterfactual"]
    np.testing.assert_allclose(pf["mad_l1"][:, 0], [1 + 0.5 + 1, 2 + 2 + 0], rtol=1e-6)
    assert "mad_l1" not in evaluate(res, CLF)["per_counterfactual"]  # needs data


def test_shapes_aggregates_runtime_and_listing(random_problem):
    data, res = random_problem
    res = dataclasses.replace(res, runtime_s=1.2, compile_s=3.0)
    out = evaluate(res, CLF, data=data)
    n, K = 6, 2
    assert set(out) == {"per_counterfactual", "mean", "sd"}
    assert set(out["per_counterfactual"]) <= set(list_metrics())
    assert set(out["mean"]) <= set(list_metrics())
    for name, v in out["per_counterfactual"].items():
        assert v.shape == (n, K), name
        np.testing.assert_allclose(out["mean"][name], np.nanmean(v), rtol=1e-6, err_msg=name)
        if evaluation.registry.get_metric(name).level == "set":  # one value per set, repeated K times
            v = v[:, 0]
        want_sd = np.nanstd(v, ddof=1) if np.sum(~np.isnan(v)) > 1 else np.nan
        np.testing.assert_allclose(out["sd"][name], want_sd, rtol=1e-6, err_msg=name)
    np.testing.assert_allclose(out["per_counterfactual"]["runtime_s"], 0.1)
    assert out["mean"]["runtime_total_s"] == 1.2 and out["mean"]["compile_s"] == 3.0
    assert "compile_s" not in out["per_counterfactual"] and "compile_s" not in out["sd"]
    np.testing.assert_array_equal(out["per_counterfactual"]["converged"].ravel(), np.arange(12) % 2 == 0)
    np.testing.assert_array_equal(out["per_counterfactual"]["steps"].ravel(), np.arange(12))

    table = summary_table(out)
    assert "validity" in table and "implausibility" in table and "±" in table
    lines = table.splitlines()
    assert lines[0].split() == ["metric", "value"]
    assert len({re.match(r"\S+\s+", line).end() for line in lines}) == 1  # aligned second column
    assert "invalid_onehot" in summary_table(out, keys="all")
    two = summary_table({"generic": out, "other": out}, keys=["validity", "l1"])
    assert two.splitlines()[0].split() == ["metric", "generic", "other"] and len(two.splitlines()) == 3


def test_bad_inputs(random_problem):
    data, res = random_problem
    wrong_width = dataset(np.zeros((5, 4)), np.zeros(5))
    with pytest.raises(ValueError, match="data"):
        evaluate(res, CLF, data=wrong_width)
    with pytest.raises(ValueError, match="classifier"):
        evaluate(res, linear([1.0, 1.0], 0.0))
    with pytest.raises(TypeError, match="result"):
        evaluate({"counterfactuals": 1}, CLF)
    with pytest.raises(TypeError, match="data"):
        evaluate(res, CLF, data=data.X)
    with pytest.raises(ValueError, match="n_neighbors"):
        evaluate(res, CLF, data=data, n_neighbors=0)
    with pytest.raises(ValueError, match="target"):
        evaluate(make_result(np.zeros((1, 3)), np.zeros((1, 3)), 2), CLF)
    with pytest.raises(ValueError, match="mutability"):
        evaluate(res, CLF, constraints=Constraints(mutability=["both"] * 4))
    with pytest.raises(TypeError, match="metrics"):
        summary_table([1, 2])


def test_end_to_end_with_generate():
    """cfx's own search under schema constraints: valid where converged, no violations."""
    import jax

    import cfx

    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 1.0).astype(np.int32)
    schema = FeatureSchema(
        ("a", "b", "c"), ("none", "increase", "both"), (-np.inf, -np.inf, -2.0), (np.inf, np.inf, 2.0)
    )
    data = dataset(X, y, schema)
    x = X[y == 0][:8]
    res = cfx.generate(
        cfx.generators.Generic().replace(num_counterfactuals=2),
        CLF,
        x,
        1,
        key=jax.random.key(0),
        constraints=schema.constraints(),
    )
    out = evaluate(res, CLF, data=data)
    pf = out["per_counterfactual"]
    assert pf["l1"].shape == (8, 2)
    np.testing.assert_array_equal(pf["violations"], 0)
    np.testing.assert_allclose(pf["target_prob"], np.asarray(res.target_probs), rtol=1e-5)
    np.testing.assert_array_equal(pf["validity"], np.asarray(res.target_probs) >= res.threshold)
    assert np.all(pf["validity"][pf["converged"] == 1] == 1)


# --------------------------------------------------------------------------------------
# The metric registry and the evaluation context
# --------------------------------------------------------------------------------------

import jax  # noqa: E402

from cfx import evaluation  # noqa: E402
from cfx.evaluation import Metric, register, unregister  # noqa: E402


@pytest.fixture
def registered():
    """Register metrics for one test and remove them afterwards."""
    names = []

    def add(*metrics):
        for m in metrics:
            register(m)
            names.append(m.name)

    yield add
    for name in names:
        unregister(name)


def test_a_custom_metric_is_one_register_call(random_problem, registered):
    data, res = random_problem
    traces = []

    def l1_squared(cf, x, target, ctx):
        traces.append(1)
        return jnp.sum(jnp.abs(cf - x)) ** 2

    registered(Metric("l1_squared", l1_squared, description="(sum_j |x'_j - x_j|)^2"))
    assert list_metrics()["l1_squared"] == "(sum_j |x'_j - x_j|)^2"
    out = evaluate(res, CLF, data=data)
    np.testing.assert_allclose(out["per_counterfactual"]["l1_squared"], out["per_counterfactual"]["l1"] ** 2, rtol=1e-5)
    assert "l1_squared" in out["mean"] and "l1_squared" in out["sd"]
    # only what is asked for is computed (and traced)
    n_traces = len(traces)
    only = evaluate(res, CLF, data=data, metrics=["l1_squared", "validity"])
    assert set(only["per_counterfactual"]) == {"validity", "l1_squared"} and set(only["mean"]) == {
        "validity",
        "l1_squared",
    }
    assert len(traces) == n_traces  # same shapes, same context structure: no retrace
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        evaluate(res, CLF, metrics=["nope"])


def test_a_custom_family_is_computed_in_one_pass(random_problem):
    _, res = random_problem
    traces = []

    def moments(cf, x, target, ctx):
        traces.append(1)
        delta = cf - x
        return {"delta_mean": jnp.mean(delta), "delta_max": jnp.max(delta)}

    names = {"delta_mean": "mean_j (x'_j - x_j)", "delta_max": "max_j (x'_j - x_j)"}
    try:
        evaluation.register_family(moments, names, group="moments")
        pf = evaluate(res, CLF, metrics=list(names))["per_counterfactual"]
        assert len(traces) == 1  # one traced call serves both
        delta = np.asarray(res.counterfactuals) - np.asarray(res.factuals)[:, None, :]
        np.testing.assert_allclose(pf["delta_mean"], delta.mean(-1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(pf["delta_max"], delta.max(-1), rtol=1e-6)
        # replacing a family keeps its place in the reporting order
        order = list(list_metrics())
        evaluation.register_family(moments, names, group="moments", replace=True)
        assert list(list_metrics()) == order
    finally:
        for name in names:
            unregister(name)


def test_set_and_result_level_metrics(random_problem, registered):
    data, res = random_problem

    def spread(cfs, x, target, ctx):  # mean distance of the K counterfactuals to their centroid
        return jnp.mean(jnp.linalg.norm(cfs - cfs.mean(axis=0), axis=-1))

    registered(
        Metric("spread", spread, level="set", description="mean distance of the K counterfactuals to their centroid"),
        Metric("n_rows", lambda r, ctx: r.factuals.shape[0], level="result", description="n (mean only)"),
    )
    out = evaluate(res, CLF, metrics=["spread", "n_rows"])
    cfs = np.asarray(res.counterfactuals)
    want = np.linalg.norm(cfs - cfs.mean(axis=1, keepdims=True), axis=-1).mean(axis=1)  # (n,)
    assert out["per_counterfactual"]["spread"].shape == (6, 2)
    np.testing.assert_allclose(out["per_counterfactual"]["spread"], np.repeat(want[:, None], 2, axis=1), rtol=1e-5)
    np.testing.assert_allclose(out["sd"]["spread"], np.std(want, ddof=1), rtol=1e-5)  # over the n sets
    assert out["mean"]["n_rows"] == 6 and "n_rows" not in out["per_counterfactual"] and "n_rows" not in out["sd"]


def test_diversity_is_the_mean_pairwise_l1_of_a_set(random_problem):
    data, res = random_problem  # K = 2
    out = evaluate(res, CLF, metrics=["diversity"])
    cfs = np.asarray(res.counterfactuals)
    want = np.abs(cfs[:, 0] - cfs[:, 1]).sum(-1)  # K = 2: the one pair, counted both ways over 2
    np.testing.assert_allclose(out["per_counterfactual"]["diversity"][:, 0], want, rtol=1e-5)
    single = evaluate(
        res.replace(
            counterfactuals=res.counterfactuals[:, :1],
            outcome=res.outcome[:, :1],
            steps=res.steps[:, :1],
            target_probs=res.target_probs[:, :1],
            terms={k: v[:, :1] for k, v in res.terms.items()},
        ),
        CLF,
        metrics=["diversity"],
    )
    assert np.all(single["per_counterfactual"]["diversity"] == 0.0)


def test_metric_needing_an_absent_slot_is_skipped(random_problem, registered):
    data, res = random_problem
    registered(Metric("q_hat_echo", lambda cf, x, t, ctx: ctx.q_hat, needs=("q_hat",), description="q_hat"))
    out = evaluate(res, CLF, data=data)
    for name in ("q_hat_echo", "set_size", "unfaithfulness"):  # slots are None until filled
        assert name not in out["per_counterfactual"] and name not in out["mean"]
    assert "mad_l1" not in evaluate(res, CLF, metrics=["mad_l1", "l1"])["mean"]  # needs data
    ctx = evaluation.context(CLF, data, q_hat=0.7)
    got = evaluate(res, CLF, context=ctx, metrics=["q_hat_echo"])["per_counterfactual"]["q_hat_echo"]
    np.testing.assert_allclose(got, 0.7, rtol=1e-6)


def test_unfaithfulness_and_set_size_once_their_slots_are_filled():
    # binary model p(1|x) = sigmoid(x0 + x1 - 1); samples of class 1 at (1, 1, 0) and (3, 1, 0)
    samples = np.zeros((2, 2, 3), np.float32)
    samples[0] = [[-1, -1, 0], [-2, -2, 0]]
    samples[1] = [[1, 1, 0], [3, 1, 0]]
    ctx = evaluation.context(CLF, conditional_samples=samples, q_hat=0.9)
    cf = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]])  # logits 2 (valid) and -1 (invalid)
    pf = evaluate(make_result(np.zeros((2, 3)), cf, 1), CLF, context=ctx)["per_counterfactual"]
    np.testing.assert_allclose(pf["unfaithfulness"][:, 0], [1.0, (np.sqrt(2) + np.sqrt(10)) / 2], rtol=1e-5)
    p1 = 1 / (1 + np.exp(-2.0))
    membership = 1 / (1 + np.exp(-(0.9 - (1 - np.array([1 - p1, p1]))) / 0.1))
    np.testing.assert_allclose(pf["set_size"][:, 0], [max(0.0, membership.sum() - 1), 0.0], rtol=1e-5)
    with pytest.raises(ValueError, match="conditional_samples"):
        evaluation.context(CLF, conditional_samples=np.zeros((3, 2, 3)))


def test_prebuilt_context_same_numbers_no_recompile(random_problem):
    data, res = random_problem
    want = evaluate(res, CLF, data=data)
    ctx = evaluation.context(CLF, data)
    sizes = batching.map_metrics._cache_size(), batching.predict_labels._cache_size()
    got = evaluate(res, CLF, context=ctx)
    again = evaluate(dataclasses.replace(res, threshold=0.7), CLF, context=ctx)
    assert (batching.map_metrics._cache_size(), batching.predict_labels._cache_size()) == sizes
    for name, v in want["per_counterfactual"].items():
        np.testing.assert_array_equal(got["per_counterfactual"][name], v, err_msg=name)
    assert got["mean"].keys() == want["mean"].keys()
    assert again["mean"]["threshold"] == pytest.approx(0.7)
    # a context is per (model, data): not for another model, nor mixed with data=
    with pytest.raises(ValueError, match="another classifier"):
        evaluate(res, CLF.replace(jax_tree_neg(CLF.params)), context=ctx)
    with pytest.raises(ValueError, match="context"):
        evaluate(res, CLF, data=data, context=ctx)
    assert jax.tree_util.tree_leaves(ctx)  # a PyTree of arrays


def test_untargeted_validity():
    # factuals predicted 0 (logit -1); target -1: valid when the label moved off class 0
    x = np.zeros((3, 3))
    cf = np.array([[0.6, 0.6, 0.0], [2.0, 0.5, 0.0], [0.2, 0.0, 0.0]])  # logits 0.2, 1.5, -0.8
    p1 = 1 / (1 + np.exp(-np.array([0.2, 1.5, -0.8])))
    res = make_result(x, cf, -1)
    pf = evaluate(res, CLF)["per_counterfactual"]
    np.testing.assert_array_equal(pf["validity"][:, 0], [1, 1, 0])
    np.testing.assert_array_equal(pf["label_validity"][:, 0], [1, 1, 0])
    np.testing.assert_allclose(pf["target_prob"][:, 0], p1, rtol=1e-6)  # largest p of a class != 0
    np.testing.assert_array_equal(pf["redundancy_carla"][:2, 0], [0, 1])  # reverting x1 of row 1 keeps label 1
    assert np.isnan(pf["redundancy_carla"][2, 0])
    # a factual already predicted 1: untargeted success means reaching class 0
    pf = evaluate(make_result(np.full((1, 3), 2.0), [[0.0, 0.0, 2.0]], -1), CLF)["per_counterfactual"]
    assert pf["validity"][0, 0] == 1 and pf["target_prob"][0, 0] == pytest.approx(1 / (1 + np.exp(-1.0)))
    # threshold applies as in the search: tau 0.6 > p 0.55 -> not valid, label still moved
    pf = evaluate(make_result(x, cf, -1, threshold=0.6), CLF)["per_counterfactual"]
    np.testing.assert_array_equal(pf["validity"][:, 0], [0, 1, 0])
    with pytest.raises(ValueError, match=r"\[-1, 2\)"):
        evaluate(make_result(x, cf, -2), CLF)


def test_untargeted_neighbours_use_the_predicted_class():
    # the line of test_ynn_and_implausibility_on_a_line: untargeted x' = 7 is predicted 1
    X = np.stack([np.arange(10.0), np.zeros(10)], axis=1)
    data = dataset(X, (np.arange(10) < 5).astype(int))
    res = make_result(np.zeros((1, 2)), [[7.0, 0.0]], -1)
    pf = evaluate(res, linear([1.0, 0.0], -4.5), data=data, n_neighbors=2)["per_counterfactual"]
    np.testing.assert_allclose(pf["ynn"][0, 0], 1.0)
    np.testing.assert_allclose(pf["implausibility"][0, 0], 3.5, atol=1e-5)  # 2 nearest true-1 points: 4, 3


def test_outcome_is_reported():
    res = make_result(np.zeros((1, 3)), np.zeros((1, 2, 3)), 1)
    res = dataclasses.replace(res, outcome=jnp.asarray([[0, 2]], jnp.int32))
    pf = evaluate(res, CLF, metrics=["outcome", "converged"])["per_counterfactual"]
    np.testing.assert_array_equal(pf["outcome"], [[0, 2]])
    np.testing.assert_array_equal(pf["converged"], [[1, 0]])


def test_registry_rejects_bad_metrics():
    f = lambda cf, x, t, ctx: 0.0  # noqa: E731
    with pytest.raises(ValueError, match="already registered"):
        register(Metric("l1", f, description="again"))
    with pytest.raises(ValueError, match="level"):
        Metric("m", f, level="batch", description="d")
    with pytest.raises(ValueError, match="need"):
        Metric("m", f, needs=("gpu",), description="d")
    with pytest.raises(ValueError, match="one non-empty line"):
        Metric("m", f, description="two\nlines")
    with pytest.raises(ValueError, match="group"):
        register(Metric("m", f, group="distances", description="d"))
    assert "m" not in list_metrics()


def test_one_mmd_weighted_sets_equal_the_masked_test_and_empty_terms_are_zero():
    """cfx.evaluation.mmd.mmd2 (CT's IP*) and masked_mmd_test (the dynamics) are one MMD²."""
    import jax

    from cfx.evaluation.mmd import masked_mmd_test, mmd2

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(12, 3)).astype(np.float32), (rng.normal(size=(10, 3)) + 0.5).astype(np.float32)
    wa, wb = (rng.random(12) < 0.7).astype(np.float32), (rng.random(10) < 0.7).astype(np.float32)
    value, _ = masked_mmd_test(a, wa > 0, b, wb > 0, key=jax.random.key(0), n_permutations=0)
    assert float(mmd2(a, b, wa, wb, 0.5)) == pytest.approx(float(value), rel=1e-5)
    one = np.eye(12, dtype=np.float32)[0]  # a single counterfactual: no within-set pair, that term is 0
    k_ab = np.exp(-np.sum((a[0] - b) ** 2, -1) / (2 * 0.5**2))
    k_bb = np.exp(-np.sum((b[:, None] - b[None]) ** 2, -1) / (2 * 0.5**2))
    expected = (k_bb.sum() - 10) / 90 - 2 * k_ab.mean()
    assert float(mmd2(a, b, one, np.ones(10, np.float32), 0.5)) == pytest.approx(expected, rel=1e-4)


def test_population_metrics_are_registered_but_not_computed_by_evaluate():
    from cfx.evaluation import EVALUATED, get_metric

    assert get_metric("ip").level == "population" and "ip" not in list_metrics(EVALUATED)
    assert {"ip", "ip_star", "accuracy", "mmd_domain", "disagreement", "f1_change"} <= set(list_metrics())
    assert get_metric("implausibility").description != get_metric("ip").description  # two quantities, two names
    res = make_result([[0.0, 0.0, 0.0]], [[1.0, 1.0, 0.0]], 1)
    with pytest.raises(ValueError, match="'ip' is a population metric"):
        evaluate(res, CLF, metrics=["ip"])
    assert "ip" not in evaluate(res, CLF)["mean"]


def test_one_headline_notion_the_registry_answers_every_table(registered):
    from cfx.evaluation import get_metric, headline_metrics
    from cfx.evaluation.registry import DERIVED, HEADLINE_TABLES

    from cfx.evaluation.registry import registered as all_metrics

    flagged = [m.name for m in all_metrics() if "evaluate" in m.headline]
    assert headline_metrics() == tuple(flagged) and headline_metrics("evaluate")[:3] == (
        "validity",
        "redundancy_carla",
        "l1",
    )
    assert get_metric("l1").headline == ("evaluate",) and get_metric("linf").headline == ()
    for table, names in HEADLINE_TABLES.items():  # every column is a registered metric or derived from one
        assert headline_metrics(table) == names
        for name in names:
            assert name in list_metrics() or get_metric(DERIVED[name]).name == DERIVED[name], (table, name)
    # the kinds' columns are the registry's
    from cfx.experiments.kinds import benchmark, ct, dynamics, eccco

    assert benchmark.HEADLINE_METRICS == headline_metrics("benchmark") and ct.HEADLINE == headline_metrics("ct")
    assert eccco.TABLE_METRICS == headline_metrics("eccco") and dynamics.TABLE_METRICS == headline_metrics("dynamics")
    # a metric that names a table joins it, after the table's own columns
    registered(
        Metric(
            "l1_twice",
            lambda cf, x, target, ctx: 2 * jnp.sum(jnp.abs(cf - x)),
            description="2 ||x' - x||_1",
            headline=("benchmark", "mine"),
        )
    )
    assert headline_metrics("benchmark")[-1] == "l1_twice" and headline_metrics("mine") == ("l1_twice",)
    assert "l1_twice" not in headline_metrics()
    with pytest.raises(ValueError, match="unknown headline table 'nope'"):
        headline_metrics("nope")
    with pytest.raises(TypeError, match="headline must be a bool or table names"):
        Metric("bad", lambda cf, x, t, c: 0.0, description="d", headline=(1,))

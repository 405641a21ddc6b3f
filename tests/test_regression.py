"""Regression targets: the interval logit, closed forms on a linear regressor, convergence and
validity as membership, refusals before compiling, bad input, the benchmark smoke config."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import compile_counts

import cfx
from cfx.data import Dataset, FeatureSchema
from cfx.models import Regressor, fit_regressor, interval_labels

W_TRUE = np.array([2.0, -1.0, 0.5])


@pytest.fixture(scope="module")
def linear_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    v = X @ W_TRUE + 1.0 + 0.05 * rng.normal(size=200)
    return X, v


@pytest.fixture(scope="module")
def exact():
    """A fixed linear regressor ŷ = x·w + 1 (plain JAX, no training)."""
    params = {"w": jnp.asarray(W_TRUE, jnp.float32), "b": jnp.float32(1.0)}
    return Regressor(lambda p, x: x @ p["w"] + p["b"], params, n_features=3)


def test_fit_regressor_recovers_least_squares(linear_data):
    X, v = linear_data
    reg = fit_regressor(X, v, widths=(), epochs=40, learning_rate=0.05, seed=0)
    A = np.c_[X, np.ones(len(X))]
    lstsq = A @ np.linalg.lstsq(A, v, rcond=None)[0]
    assert np.max(np.abs(reg.predict(X) - lstsq)) < 0.05
    assert reg.scale == pytest.approx(v.std(), rel=1e-5)


def test_interval_probability_is_membership(exact):
    x = np.random.default_rng(1).normal(size=(300, 3)).astype(np.float32) * 2
    y = exact.predict(x)
    for lo, hi in ((0.0, 2.0), (1.5, None), (None, -1.0)):
        clf = exact.within(lo, hi)
        p = np.asarray(clf.probs(x))[:, 1]
        np.testing.assert_array_equal(p >= 0.5, interval_labels(y, lo, hi) == 1)
        # g = min(ŷ − lo, hi − ŷ)/s with s = 1 here
        g = np.minimum(y - (-np.inf if lo is None else lo), (np.inf if hi is None else hi) - y)
        np.testing.assert_allclose(np.asarray(clf.logits(x))[:, 1], g, rtol=1e-5, atol=1e-5)


def test_generic_moves_along_the_gradient_onto_the_interval(exact):
    """Generic without a cost on a linear regressor: every step is along w, so x' − x ∥ w and the
    search stops on the first step inside [lo, hi] (closed form: the projection onto ŷ = lo)."""
    x = np.array([[0.0, 0.0, 0.0], [-1.0, 0.5, 0.0], [1.0, 1.0, 1.0]], np.float32)  # ŷ = 1, −1.5, 2.5
    lo, hi = 4.0, 6.0
    res = cfx.generate(
        cfx.generators.Generic(cost=0.0), exact.within(lo, hi), x, target=1, key=jax.random.key(0), max_steps=500
    )
    assert bool(np.all(np.asarray(res.converged)))
    cf = np.asarray(res.counterfactuals[:, 0])
    delta = cf - x
    cos = delta @ W_TRUE / (np.linalg.norm(delta, axis=1) * np.linalg.norm(W_TRUE))
    np.testing.assert_allclose(cos, 1.0, atol=1e-5)
    y = exact.predict(cf)
    assert np.all((y >= lo) & (y <= hi)) and np.all(y - lo < 0.5)
    # the minimum-L2 point of ŷ = lo: x + (lo − ŷ(x)) w / |w|², which the search reaches within one step
    proj = x + ((lo - exact.predict(x)) / (W_TRUE @ W_TRUE))[:, None] * W_TRUE[None]
    assert np.max(np.linalg.norm(cf - proj, axis=1)) < 0.25


def test_generators_converge_and_validity_is_membership(exact):
    x = np.random.default_rng(2).normal(size=(8, 3)).astype(np.float32)
    target = exact.at_least(3.0)
    before = compile_counts.search()
    for name in ("wachter", "greedy"):
        data = Dataset(x, interval_labels(exact.predict(x), 3.0), FeatureSchema.default(3))
        gen = cfx.generators.make(name, data=data, classifier=target)
        res = cfx.generate(gen, target, x, target=1, key=jax.random.key(0))
        ev = cfx.evaluate(res, target, metrics=["validity"])
        member = exact.predict(np.asarray(res.counterfactuals[:, 0])) >= 3.0
        np.testing.assert_array_equal(ev["per_counterfactual"]["validity"][:, 0] == 1, member)
        assert member.mean() >= 0.75
    # a new interval is a new leaf: no recompilation
    compiled = compile_counts.search()
    cfx.generate(cfx.generators.make("greedy"), exact.within(-2.0, 0.5), x, target=1, key=jax.random.key(0))
    assert compile_counts.search() == compiled > before


@pytest.mark.parametrize("name", ["eccco", "ecco", "probe", "clue"])
def test_generators_that_need_class_probabilities_are_refused(exact, name):
    before = compile_counts.search()
    with pytest.raises(ValueError, match=r"generator \w+ cannot search for a regression target: .+"):
        cfx.generate(
            cfx.generators.make(name),
            exact.within(0.0, 1.0),
            np.zeros((2, 3), np.float32),
            target=1,
            key=jax.random.key(0),
        )
    assert compile_counts.search() == before


def test_refusals_are_exactly_the_generators_with_a_reason():
    refused = {name for name, e in cfx.generators.REGISTRY.items() if e.cls.regression_refusal}
    assert refused == {
        "eccco",
        "ecco",
        "eccco_no_conformal",
        "eccco_no_energy",
        "eccco_plus",
        "eccco_l1",
        "probe",
        "clue",
    }


def test_bad_input_names_the_argument(exact, linear_data):
    X, v = linear_data
    with pytest.raises(ValueError, match=r"lo must be <= hi; got lo=2.0 > hi=1.0"):
        exact.within(2.0, 1.0)
    with pytest.raises(ValueError, match="lo and hi"):
        exact.within(None, None)
    with pytest.raises(ValueError, match="scale must be"):
        exact.within(0.0, 1.0, scale=0.0)
    with pytest.raises(ValueError, match=r"target must be 1 \(inside the interval\)"):
        cfx.generate(cfx.generators.Generic(), exact.within(0.0, 1.0), X[:2], target=0, key=jax.random.key(0))
    with pytest.raises(TypeError, match=r"classifier must be a cfx.Classifier; got Regressor.*within\(lo, hi\)"):
        cfx.generate(cfx.generators.Generic(), exact, X[:2], target=1, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"values must be the \(n,\) = \(200,\) real targets"):
        fit_regressor(X, v[:10])
    data = Dataset(X, (v > 1.0).astype(np.int32), FeatureSchema.default(3))
    with pytest.raises(ValueError, match=r"interval=\(2.0, None\): dataset.y is not the membership"):
        cfx.models.fit(data, "regressor", interval=(2.0, None), values=v, epochs=1)
    with pytest.raises(ValueError, match="interval must be a pair"):
        cfx.models.fit(data, "regressor", values=v, epochs=1)


def test_california_regression_configs_parse_and_the_regressor_restores(linear_data):
    from pathlib import Path

    from cfx import experiments

    configs = Path(__file__).resolve().parents[1] / "configs"
    for name in ("benchmark_regression.yaml", "benchmark_regression_smoke.yaml"):
        cfg = experiments.load_config(configs / name)
        assert cfg.models[0].options["interval"] == [179700, None]
    # the benchmark restores a saved model as init(...) + saved params: same structure as fit's
    X, v = linear_data
    data = Dataset(X, interval_labels(v, 1.0), FeatureSchema.default(3))
    trained = cfx.models.fit(data, "regressor", interval=(1.0, None), values=v, widths=(4,), epochs=1)
    fresh = cfx.models.init(data, "regressor", interval=(1.0, None), values=v, widths=(4,))
    assert repr(fresh.apply_fn) == repr(trained.apply_fn)
    assert jax.tree_util.tree_structure(fresh.params) == jax.tree_util.tree_structure(trained.params)


@pytest.mark.slow
def test_california_regression_benchmark_smoke(tmp_path):
    from pathlib import Path

    from cfx import experiments

    config = Path(__file__).resolve().parents[1] / "configs" / "benchmark_regression_smoke.yaml"
    experiments.run(config, out=tmp_path / "r", progress=False)
    experiments.run(config, out=tmp_path / "r", resume=True, progress=False)  # restores the regressor
    assert (tmp_path / "r" / "results.csv").exists()


@pytest.mark.slow
def test_every_generator_without_a_refusal_reaches_the_interval(exact):
    """Every registered generator that is not refused converges on most rows of a linear regressor
    (run with --runslow; on 2026-12-07: see docs/models.md, "Regression targets")."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    target = exact.within(2.0, 4.0)
    data = Dataset(rng.normal(size=(200, 3)).astype(np.float32), np.zeros(200, np.int32), FeatureSchema.default(3))
    data = Dataset(data.X, interval_labels(exact.predict(data.X), 2.0, 4.0), data.schema)
    x = x[interval_labels(exact.predict(x), 2.0, 4.0) == 0]
    for name, entry in cfx.generators.REGISTRY.items():
        if entry.cls.regression_refusal or name == "conservative":  # τ = 0.9 asks for a margin the interval lacks
            continue
        kw = {"num_counterfactuals": 3} if name == "dice" else {}
        gen = cfx.generators.make(name, data=data, classifier=target, **kw)
        res = cfx.generate(gen, target, x, target=1, key=jax.random.key(0), max_steps=300)
        y = exact.predict(np.asarray(res.counterfactuals).reshape(-1, 3))
        inside = (y >= 2.0) & (y <= 4.0)
        assert inside.mean() >= 0.5, (name, inside.mean())


def test_per_row_intervals_equal_one_scalar_search_per_row():
    """cfx.generate_within: row i searches within(lo_i, hi_i); the same as a scalar search of that row."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3)).astype(np.float32)
    reg = cfx.models.Regressor(lambda p, x: x @ p["w"], {"w": np.array([1.0, -2.0, 0.5], np.float32)}, n_features=3)
    y0 = reg.predict(x)
    lo, hi = y0 + 1.0 + np.arange(6) * 0.2, y0 + 2.0 + np.arange(6) * 0.2
    gen = cfx.generators.Generic(cost=0.01)
    res = cfx.generate_within(gen, reg, x, lo, hi, key=jax.random.key(0), max_steps=300)
    assert res.counterfactuals.shape == (6, 1, 3) and bool(res.converged.all())
    y = reg.predict(np.asarray(res.counterfactuals[:, 0]))
    assert np.all((y >= lo) & (y <= hi))
    one = cfx.generate(gen, reg.within(lo[4], hi[4]), x[4:5], 1, key=jax.random.key(0), max_steps=300)
    np.testing.assert_allclose(one.counterfactuals[0], res.counterfactuals[4], atol=1e-6)
    # one side open for every row, the other per row
    res = cfx.generate_within(gen, reg, x, lo=y0 + 0.5, key=jax.random.key(0), max_steps=300)
    assert np.all(reg.predict(np.asarray(res.counterfactuals[:, 0])) >= y0 + 0.5)


@pytest.mark.parametrize(
    "lo, hi, match",
    [
        ([0.0, 2.0], [1.0, 1.0], "lo must be <= hi in every row; row 1"),
        ([0.0], None, r"lo must be .* one value per factual \(2,\)"),
        (None, [None, 1.0], "row 0 has no finite bound"),
        ([np.nan, 0.0], 1.0, "lo must not be NaN"),
    ],
)
def test_per_row_intervals_bad_input_names_the_argument(lo, hi, match):
    reg = cfx.models.Regressor(lambda p, x: x @ p["w"], {"w": np.ones(2, np.float32)}, n_features=2)
    with pytest.raises(ValueError, match=match):
        cfx.generate_within(cfx.generators.Generic(), reg, np.zeros((2, 2), np.float32), lo, hi, key=jax.random.key(0))
    with pytest.raises(ValueError, match="cannot search for a regression target"):
        cfx.generate_within(cfx.generators.Probe(), reg, np.zeros((2, 2), np.float32), 0.0, 1.0, key=jax.random.key(0))


def test_a_regressor_where_a_classifier_belongs_is_refused_with_the_fix():
    reg = cfx.models.Regressor(lambda p, x: x @ p["w"], {"w": np.ones(2, np.float32)}, n_features=2)
    x = np.zeros((2, 2), np.float32)
    with pytest.raises(TypeError, match=r"classifier must be a cfx.Classifier; got Regressor .*regressor.within"):
        cfx.generate(cfx.generators.Generic(), reg, x, 1, key=jax.random.key(0))
    with pytest.raises(TypeError, match="regressor must be a cfx.models.Regressor; got Classifier"):
        cfx.generate_within(cfx.generators.Generic(), reg.within(0.0, 1.0), x, 0.0, 1.0, key=jax.random.key(0))

"""Last-layer Laplace: closed forms (GGN = Hessian, probit at the boundary and far away, the
evidence's optimum), the classifier contract (no recompilation, search, metrics, conformal) and
bad input."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import compile_counts

import cfx
from cfx.data import Dataset, FeatureSchema
from cfx.models import laplace, last_layer_ggn
from cfx.models.laplace import log_evidence


def _blobs(n_classes, n=60, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2.0, (n_classes, 2))
    y = np.arange(n) % n_classes
    X = (centres[y] + rng.normal(0, 1.0, (n, 2))).astype(np.float32)
    return Dataset(X, y.astype(np.int32), FeatureSchema.default(2), name="blobs")


@pytest.fixture(scope="module")
def linear3():
    data = _blobs(3)
    return data, cfx.models.init(data, "linear", n_classes=3, seed=0)


@pytest.fixture(scope="module")
def linear2():
    data = _blobs(2)
    return data, cfx.models.init(data, "linear", seed=0)


def _exact_hessian(clf, data):
    """jax.hessian of the summed softmax NLL w.r.t. W̃ = [kernel; bias], flattened row-major."""
    X, y = jnp.asarray(data.X), jnp.asarray(data.y)

    def nll(Wt):
        logits = X @ Wt[:-1] + Wt[-1]
        return -jnp.sum(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))

    dense = clf.params["params"]["logits"]
    Wt = jnp.concatenate([dense["kernel"], dense["bias"][None]])
    P = Wt.size
    return np.asarray(jax.jit(jax.hessian(nll))(Wt)).reshape(P, P)


@pytest.mark.parametrize("fixture", ["linear2", "linear3"])
def test_ggn_equals_exact_hessian_on_a_linear_model(fixture, request):
    data, clf = request.getfixturevalue(fixture)
    exact = _exact_hessian(clf, data)
    ggn = np.asarray(last_layer_ggn(clf, data.X))
    np.testing.assert_allclose(ggn, exact, rtol=1e-4, atol=1e-4)
    diag = np.asarray(last_layer_ggn(clf, data.X, hessian="diag"))  # (h+1, C): H's diagonal, row-major
    np.testing.assert_allclose(diag.ravel(), np.diag(exact), rtol=1e-4, atol=1e-5)


def test_kfac_is_exact_for_one_example(linear3):
    data, clf = linear3
    A, G = last_layer_ggn(clf, data.X[:1], hessian="kfac")
    np.testing.assert_allclose(np.kron(A, G), np.asarray(last_layer_ggn(clf, data.X[:1])), rtol=1e-5, atol=1e-6)


def test_probit_equal_on_the_boundary_and_less_confident_away(linear2):
    data, clf = linear2
    bayes = laplace(clf, data)
    dense = clf.params["params"]["logits"]
    w = np.asarray(dense["kernel"][:, 1] - dense["kernel"][:, 0])
    b = float(dense["bias"][1] - dense["bias"][0])
    # points with f_1 − f_0 = 0: x = −b w/|w|² + t w⊥, near and far along the boundary
    normal = -b * w / (w @ w)
    perp = np.array([-w[1], w[0]]) / np.linalg.norm(w)
    on = (normal[None] + np.array([-20.0, -1.0, 0.0, 3.0, 50.0])[:, None] * perp[None]).astype(np.float32)
    np.testing.assert_allclose(np.asarray(bayes.probs(on)), np.asarray(clf.probs(on)), atol=1e-5)
    np.testing.assert_allclose(np.asarray(bayes.probs(on))[:, 1], 0.5, atol=1e-5)
    # everywhere at most as confident as the MAP; far from the data much less
    grid = np.stack(np.meshgrid(np.linspace(-30, 30, 13), np.linspace(-30, 30, 13)), -1).reshape(-1, 2)
    p_map, p_lap = np.asarray(clf.probs(grid)).max(1), np.asarray(bayes.probs(grid)).max(1)
    assert np.all(p_lap <= p_map + 1e-6)
    far = np.abs(grid).max(1) >= 30
    assert np.all(p_map[far] - p_lap[far] > 0.0) and np.mean(p_map[far] - p_lap[far]) > 0.01


def test_prior_precision_maximises_the_evidence(moons_split, moons_mlp):
    train, _ = moons_split
    for hessian in ("full", "diag", "kfac"):
        bayes = laplace(moons_mlp, train, hessian=hessian)
        delta = float(bayes.params["prior_precision"])
        best = float(bayes.params["log_marginal_likelihood"])
        other = [
            laplace(moons_mlp, train, hessian=hessian, prior_precision=delta * f).params["log_marginal_likelihood"]
            for f in (0.7, 1.4)
        ]
        assert all(best >= float(o) - 1e-3 for o in other), (hessian, delta, best, other)
    assert float(log_evidence(jnp.log(2.0), jnp.ones(3), 1.0, 0.0)) == pytest.approx(
        -1.0 + 1.5 * np.log(2.0) - 1.5 * np.log(3.0), rel=1e-5
    )


def test_mc_predictive_is_the_mean_of_its_draws_and_near_probit(moons_split, moons_mlp):
    train, test = moons_split
    mc = laplace(moons_mlp, train, predictive="mc", n_samples=200, key=jax.random.key(1))
    probit = laplace(moons_mlp, train)
    phi_logits = jnp.einsum(
        "na,sac->snc", jnp.concatenate([_features(mc, test.X), jnp.ones((len(test.X), 1))], 1), mc.params["samples"]
    )
    manual = np.asarray(jnp.mean(jax.nn.softmax(phi_logits, -1), 0))
    np.testing.assert_allclose(np.asarray(mc.probs(test.X)), manual, atol=1e-5)
    assert np.max(np.abs(np.asarray(mc.probs(test.X)) - np.asarray(probit.probs(test.X)))) < 0.06


def _features(clf, X):
    return clf.apply_fn.last_layer.features(clf.params["model"], jnp.asarray(X))


def test_a_laplace_classifier_works_everywhere_without_recompiling(moons_split, moons_mlp):
    train, test = moons_split
    bayes = laplace(moons_mlp, train)
    x = test.X[np.asarray(bayes.predict(test.X)) == 0][:8]
    schut = cfx.generators.make("greedy")
    res = cfx.generate(schut, bayes, x, target=1, key=jax.random.key(0))
    table = cfx.evaluate(res, bayes, data=train, metrics=["validity", "implausibility"])
    assert table["mean"]["validity"] > 0.5
    conf = cfx.models.calibrate(bayes, test, alpha=0.2)
    assert 0.6 <= conf.coverage(test.X, test.y) <= 1.0
    # new parameters (another prior precision, another MAP of the same shapes): nothing recompiles
    other = laplace(cfx.models.init(train, "mlp", widths=(32, 32), seed=1), train, prior_precision=3.0)
    bayes.probs(test.X)
    before, searches = compile_counts.classifier(), compile_counts.search()
    other.probs(test.X)
    cfx.generate(schut, other, x, target=1, key=jax.random.key(0))
    assert compile_counts.classifier() == before and compile_counts.search() == searches
    jitted = jax.jit(lambda c, z: c.probs(z))
    a = jitted(bayes, jnp.asarray(test.X))
    assert jitted._cache_size() == 1 and jitted(other, jnp.asarray(test.X)).shape == a.shape
    assert jitted._cache_size() == 1


class _Scaled(nn.Module):
    @nn.compact
    def __call__(self, x):
        return 2.0 * nn.Dense(2, name="logits")(nn.relu(nn.Dense(4)(x)))


def test_bad_input_names_what_is_required(moons_split, moons_mlp, linear_classifier):
    train, _ = moons_split
    with pytest.raises(ValueError, match="nn.Dense submodule named 'logits'"):
        laplace(linear_classifier, train)
    with pytest.raises(ValueError, match="ensemble"):
        laplace(cfx.models.init(train, "ensemble", widths=(4,), n_members=2), train)
    with pytest.raises(ValueError, match=r"top-level layers are \['hidden_0', 'hidden_1', 'logits'\]"):
        laplace(moons_mlp, train, last_layer="head")
    scaled = cfx.models.init(train, _Scaled())
    with pytest.raises(ValueError, match="something follows it"):
        laplace(scaled, train)
    with pytest.raises(ValueError, match="hessian must be one of"):
        laplace(moons_mlp, train, hessian="exact")
    with pytest.raises(ValueError, match="needs key="):
        laplace(moons_mlp, train, predictive="mc")
    with pytest.raises(ValueError, match="prior_precision"):
        laplace(moons_mlp, train, prior_precision=-1.0)
    with pytest.raises(ValueError, match=r"train.X must have shape \(n, 2\)"):
        laplace(moons_mlp, (np.zeros((3, 5)), np.zeros(3)))


def test_laplace_from_a_benchmark_config(tmp_path):
    """``model: laplace`` in a benchmark config: trained, wrapped and searched; bad options name the key."""
    import yaml

    from cfx.experiments import load_config, run
    from cfx.experiments.config import ConfigError

    base = {
        "kind": "benchmark",
        "name": "lap",
        "data": [{"name": "moons", "n": 200}],
        "generators": ["greedy"],
        "search": {"max_steps": 5},
        "n_factuals": 5,
        "figures": False,
    }
    path = tmp_path / "c.yaml"
    for model, key in (
        ({"name": "laplace", "hessian": "kfc"}, "models[0].hessian"),
        ({"name": "laplace", "base": "ensemble"}, "models[0].base"),
        ({"name": "laplace", "n_sample": 3}, "models[0].n_sample"),
    ):
        path.write_text(yaml.safe_dump({**base, "models": [model]}))
        with pytest.raises(ConfigError) as err:
            load_config(path)
        assert err.value.path == key
    model = {"name": "laplace", "widths": [8], "epochs": 5, "learning_rate": 0.05, "hessian": "kfac"}
    path.write_text(yaml.safe_dump({**base, "models": [model]}))
    report = run(load_config(path, output=tmp_path / "out"), progress=False)
    assert set(report.summary_table["model"]) == {"laplace"}
    clf = cfx.models.fit_laplace(
        cfx.data.load("moons", n=200), widths=(8,), epochs=5, learning_rate=0.05, hessian="kfac", seed=0
    )
    assert isinstance(clf.apply_fn, cfx.models.LaplaceApply) and float(clf.params["prior_precision"]) > 0


def test_laplace_is_a_registered_model_fit_and_init_pass_its_options():
    """``laplace`` is a ModelEntry: listed, trained by name with its own options (= fit_laplace), its
    untrained form (``init``) loads saved parameters, and options of other models are refused."""
    import flax.serialization

    train = cfx.data.load("moons", n=120)
    assert "laplace" in cfx.models.list_models() and not cfx.models.MODELS.get("laplace").ct_trainable
    kw = dict(widths=(8,), epochs=3, learning_rate=0.05, seed=1, hessian="diag", predictive="mc", n_samples=7)
    clf = cfx.models.fit(train, "laplace", **kw)
    ref = cfx.models.fit_laplace(train, **kw)
    assert repr(clf.apply_fn) == repr(ref.apply_fn)
    jax.tree_util.tree_map(np.testing.assert_array_equal, clf.params, ref.params)
    fresh = cfx.models.init(train, "laplace", **kw)
    assert repr(fresh.apply_fn) == repr(clf.apply_fn)
    restored = fresh.replace(flax.serialization.from_bytes(fresh.params, flax.serialization.to_bytes(clf.params)))
    np.testing.assert_array_equal(np.asarray(restored.probs(train.X[:5])), np.asarray(clf.probs(train.X[:5])))
    with pytest.raises(TypeError, match=r"fit\(\) got unexpected keyword arguments \['hessian'\] for model 'mlp'"):
        cfx.models.fit(train, "mlp", epochs=1, hessian="full")
    with pytest.raises(ValueError, match="hessian must be one of"):
        cfx.models.fit(train, "laplace", epochs=1, hessian="kfc")

"""Models from outside JAX: scikit-learn translations (exact), host black boxes (pure_callback),
and the gradient-free path end to end on a black box."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import compile_counts
from sklearn.datasets import make_classification
from sklearn.decomposition import PCA
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import LinearSVC

import cfx


@pytest.fixture(scope="module")
def problem():
    """Three classes, 5 features on different scales (so the pipelines' scalers matter)."""
    X, y = make_classification(500, 5, n_informative=3, n_redundant=0, n_classes=3, random_state=0)
    X = (X * np.array([1.0, 10.0, 0.1, 3.0, 1.0]) + np.array([0.0, 50.0, 0.0, -2.0, 5.0])).astype(np.float32)
    return X[:350], y[:350], X[350:], y[350:]


def _estimators():
    mlp = dict(max_iter=300, random_state=0)
    return [
        ("logreg binary", LogisticRegression(max_iter=1000), True),
        ("logreg multinomial", LogisticRegression(max_iter=1000), False),
        ("linear svc binary", LinearSVC(), True),
        ("linear svc ovr", LinearSVC(), False),
        ("sgd hinge", SGDClassifier(random_state=0), False),
        # scaled: on raw features every one-vs-rest sigmoid underflows in float64 for some rows,
        # where sklearn falls back to uniform probabilities (the translation keeps their ratio)
        ("sgd log_loss ovr", make_pipeline(StandardScaler(), SGDClassifier(loss="log_loss", random_state=0)), False),
        ("mlp logistic binary", MLPClassifier((8,), activation="logistic", **mlp), True),
        ("mlp tanh softmax", MLPClassifier((8, 6), activation="tanh", **mlp), False),
        ("mlp relu softmax", MLPClassifier((8,), activation="relu", **mlp), False),
        ("mlp identity binary", MLPClassifier((4,), activation="identity", **mlp), True),
        ("pipeline standard", make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), False),
        ("pipeline minmax clip", make_pipeline(MinMaxScaler(clip=True), MLPClassifier((8,), **mlp)), True),
        ("pipeline both", make_pipeline(StandardScaler(), MinMaxScaler(), LinearSVC()), True),
    ]


@pytest.mark.parametrize("name,est,binary", _estimators(), ids=[e[0] for e in _estimators()])
def test_from_sklearn_agrees_on_held_out_data(problem, name, est, binary):
    Xtr, ytr, Xte, _ = problem
    y = (ytr > 0).astype(int) if binary else ytr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(Xtr, y)
    clf = cfx.models.from_sklearn(est)
    assert clf.n_features == 5 and clf.n_classes == (2 if binary else 3) and clf.differentiable
    np.testing.assert_array_equal(np.asarray(clf.predict(Xte)), est.predict(Xte))
    if hasattr(est, "predict_proba"):
        np.testing.assert_allclose(np.asarray(clf.probs(Xte)), est.predict_proba(Xte), atol=2e-6)
    else:  # decision scores: sigmoid of the binary score, softmax of one-vs-rest scores
        scores = est.decision_function(Xte)
        logits = np.asarray(clf.apply_fn(clf.params, jnp.asarray(Xte)))
        np.testing.assert_allclose(logits[:, 0] if binary else logits, scores, rtol=1e-4, atol=1e-4)


def test_gradient_generators_run_on_a_translation(problem):
    Xtr, ytr, Xte, _ = problem
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(Xtr, (ytr > 0).astype(int))
    clf = cfx.models.from_sklearn(est)
    rows = Xte[est.predict(Xte) == 0][:8]
    res = cfx.generate(
        cfx.generators.Generic(learning_rate=0.5), clf, rows, target=1, key=jax.random.key(0), max_steps=200
    )
    assert np.asarray(res.outcome == cfx.OUTCOMES.index("converged")).all()
    assert (est.predict(np.asarray(res.counterfactuals)[:, 0]) == 1).all()  # sklearn agrees they flipped


def test_tree_ensembles_translate_exactly(problem):
    Xtr, ytr, Xte, _ = problem
    rf = RandomForestClassifier(15, max_depth=6, random_state=0).fit(Xtr, ytr)
    gb = GradientBoostingClassifier(n_estimators=15, max_depth=3, random_state=0).fit(Xtr, (ytr > 0).astype(int))
    for est in (rf, gb):
        clf = cfx.models.from_sklearn(est)
        assert not clf.differentiable and not clf.black_box
        np.testing.assert_array_equal(np.asarray(clf.predict(Xte)), est.predict(Xte))
        np.testing.assert_allclose(np.asarray(clf.probs(Xte)), est.predict_proba(Xte), atol=1e-5)
    # a threshold's float32 image: points exactly on a split go left in both
    t = rf.estimators_[0].tree_
    on_split = np.repeat(Xte[:1], 1, 0)
    on_split[0, t.feature[0]] = np.float32(t.threshold[0])
    np.testing.assert_array_equal(np.asarray(cfx.models.from_sklearn(rf).predict(on_split)), rf.predict(on_split))


def test_unsupported_estimators_name_the_supported_ones(problem):
    Xtr, ytr, _, _ = problem
    with pytest.raises(TypeError, match="KNeighborsClassifier.*LogisticRegression.*from_predict_proba"):
        cfx.models.from_sklearn(KNeighborsClassifier().fit(Xtr, ytr))
    with pytest.raises(TypeError, match="Pipeline steps.*StandardScaler or MinMaxScaler"):
        cfx.models.from_sklearn(make_pipeline(PCA(2), LogisticRegression()).fit(Xtr, ytr))
    with pytest.raises(ValueError, match="not fitted"):
        cfx.models.from_sklearn(LogisticRegression())
    with pytest.raises(TypeError, match="binary only.*from_predict_proba"):
        cfx.models.from_sklearn(GradientBoostingClassifier(n_estimators=2).fit(Xtr, ytr))


# ----------------------------------------------------------------------------- black boxes
@pytest.fixture(scope="module")
def black_box(problem):
    Xtr, ytr, Xte, _ = problem
    forest = RandomForestClassifier(20, max_depth=6, random_state=0).fit(Xtr, (ytr > 0).astype(int))
    calls = []

    def predict_proba(X):
        calls.append(X.shape)
        assert isinstance(X, np.ndarray) and X.ndim == 2
        return forest.predict_proba(X)

    return forest, cfx.models.from_predict_proba(predict_proba, 5, 2), calls


def test_black_box_probs_and_batch_axes(problem, black_box):
    _, _, Xte, _ = problem
    forest, clf, calls = black_box
    assert clf.black_box and not clf.differentiable
    np.testing.assert_allclose(np.asarray(clf.probs(Xte[:10])), forest.predict_proba(Xte[:10]), atol=1e-6)
    calls.clear()
    # vmapped twice: the host function still sees one 2-D batch of all 3·4 rows
    grid = jnp.asarray(Xte[:12].reshape(3, 4, 5))
    out = jax.jit(jax.vmap(jax.vmap(clf.raw_logits)))(grid)
    assert out.shape == (3, 4, 2) and calls == [(12, 5)]
    np.testing.assert_allclose(np.exp(np.asarray(out)).reshape(12, 2), forest.predict_proba(Xte[:12]), atol=1e-6)


def test_growing_spheres_end_to_end_on_a_black_box(problem, black_box):
    _, _, Xte, _ = problem
    forest, clf, _ = black_box
    rows = Xte[forest.predict(Xte) == 0][:10]
    res = cfx.generate(
        cfx.generators.GrowingSpheres(n_samples=200), clf, rows, target=1, key=jax.random.key(0), max_steps=30
    )
    converged = np.asarray(res.outcome)[:, 0] == cfx.OUTCOMES.index("converged")
    assert converged.mean() >= 0.9
    assert (forest.predict(np.asarray(res.counterfactuals)[converged, 0]) == 1).all()
    metrics = cfx.evaluate(res, clf)
    assert metrics["mean"]["validity"] == pytest.approx(converged.mean())


def test_explain_on_a_black_box():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"income": rng.normal(50, 10, 300), "debt": rng.normal(20, 5, 300), "city": rng.choice(["a", "b", "c"], 300)}
    )
    frame["approved"] = (frame["income"] - frame["debt"] + rng.normal(0, 3, 300) > 30).astype(int)
    train, _ = cfx.data.train_test(cfx.data.from_frame(frame, "approved"), seed=0)
    forest = RandomForestClassifier(20, max_depth=5, random_state=0).fit(np.asarray(train.X), np.asarray(train.y))
    clf = cfx.models.from_predict_proba(forest.predict_proba, train.X.shape[1], 2)
    rows = train.to_frame()[np.asarray(train.y) == 0].head(5)
    out = cfx.explain(clf, rows, data=train, generator="growing_spheres", target=1, max_steps=50)
    assert out["valid"].all()
    encoded = train.encoder.encode(out[list(rows.columns.drop("approved", errors="ignore"))])
    assert (forest.predict(encoded) == 1).all()  # re-encoded raw rows are valid for the host model too


def test_gradient_generators_are_refused_on_black_boxes_before_compiling(problem, black_box):
    _, _, Xte, _ = problem
    _, clf, _ = black_box
    before = compile_counts.search()
    with pytest.raises(ValueError, match="Generic follows the model's gradient.*black box.*growing_spheres"):
        cfx.generate(cfx.generators.Generic(), clf, Xte[:3], target=1, key=jax.random.key(0))
    assert compile_counts.search() == before


def test_a_non_traceable_apply_fn_names_from_predict_proba(problem):
    _, _, Xte, _ = problem
    numpy_model = lambda p, x: np.asarray(x) @ p  # noqa: E731 (what a user writes)
    with pytest.raises(TypeError, match="from_predict_proba"):
        cfx.Classifier(numpy_model, np.ones((5, 2), np.float32), n_features=5)
    clf = cfx.Classifier(numpy_model, np.ones((5, 2), np.float32), n_features=5, n_classes=2)
    with pytest.raises(TypeError, match="from_predict_proba"):
        cfx.generate(cfx.generators.GrowingSpheres(), clf, Xte[:2], target=1, key=jax.random.key(0))
    with pytest.raises(TypeError, match="from_predict_proba"):
        clf.probs(Xte[:2])


def test_an_estimator_passed_as_a_classifier_is_told_how_to_wrap_it(problem):
    Xtr, ytr, Xte, _ = problem
    est = LogisticRegression(max_iter=1000).fit(Xtr, ytr)
    with pytest.raises(TypeError, match="classifier must be a cfx.Classifier.*from_sklearn.*from_predict_proba"):
        cfx.generate(cfx.generators.Generic(), est, Xte[:2], target=1, key=jax.random.key(0))


def test_from_predict_proba_checks_its_function():
    with pytest.raises(ValueError, match=r"returned shape \(2,\).*n_classes=2"):
        cfx.models.from_predict_proba(lambda X: X[:, 0], 3, 2)
    with pytest.raises(ValueError, match="n_classes must be an int >= 2"):
        cfx.models.from_predict_proba(lambda X: X, 3, 1)
    with pytest.raises(TypeError, match="fn must be callable"):
        cfx.models.from_predict_proba("model", 3, 2)


def test_a_flax_nnx_module_is_a_classifier_with_a_one_line_adapter():
    nnx = pytest.importorskip("flax.nnx")

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.hidden, self.out = nnx.Linear(2, 8, rngs=rngs), nnx.Linear(8, 2, rngs=rngs)

        def __call__(self, x):
            return self.out(nnx.tanh(self.hidden(x)))

    model = Net(nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    clf = cfx.Classifier(lambda s, x: nnx.merge(graphdef, s)(x), state, n_features=2)  # the adapter
    x = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(clf.logits(x)), np.asarray(model(jnp.asarray(x))), atol=1e-6)
    target = 1 - np.asarray(clf.predict(x))
    res = cfx.generate(
        cfx.generators.Generic(learning_rate=0.5), clf, x, target=target, key=jax.random.key(0), max_steps=300
    )
    moved = np.abs(np.asarray(res.counterfactuals)[:, 0] - x).sum(1)
    assert (moved > 0).all()  # the gradient reaches the search through nnx.merge
    assert (np.asarray(res.target_probs)[:, 0] > np.asarray(clf.probs(x))[np.arange(6), target]).all()


def test_an_equinox_module_is_a_classifier_with_a_one_line_adapter():
    eqx = pytest.importorskip("equinox")  # not a cfx dependency: skipped where it is not installed
    model = eqx.nn.MLP(2, 2, 8, 1, key=jax.random.key(0))  # per example: (2,) -> (2,)
    params, static = eqx.partition(model, eqx.is_array)
    clf = cfx.Classifier(lambda p, x: jax.vmap(eqx.combine(p, static))(x), params, n_features=2)  # the adapter
    x = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(clf.logits(x)), np.asarray(jax.vmap(model)(jnp.asarray(x))), atol=1e-6)
    target = 1 - np.asarray(clf.predict(x))
    res = cfx.generate(
        cfx.generators.Generic(learning_rate=0.5, cost=0.0), clf, x, target=target, key=jax.random.key(0), max_steps=300
    )
    assert (np.abs(np.asarray(res.counterfactuals)[:, 0] - x).sum(1) > 0).all()  # the gradient reaches the inputs
    assert (np.asarray(res.target_probs)[:, 0] > np.asarray(clf.probs(x))[np.arange(6), target]).all()


def test_a_pytorch_model_as_a_black_box(problem):
    torch = pytest.importorskip("torch")  # not a cfx dependency: skipped where it is not installed
    Xtr, ytr, Xte, _ = problem
    yb = (ytr > 0).astype(int)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(Xtr.shape[1], 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.from_numpy(Xtr)), torch.from_numpy(yb)).backward()
        opt.step()
    calls = []

    def predict_proba(rows):
        calls.append(rows.shape)
        with torch.no_grad():
            return torch.softmax(net(torch.from_numpy(np.asarray(rows, np.float32))), -1).numpy()

    clf = cfx.models.from_predict_proba(predict_proba, n_features=Xtr.shape[1], n_classes=2)
    rows = Xte[predict_proba(Xte).argmax(1) == 0][:6]
    calls.clear()
    res = cfx.generate(cfx.generators.GrowingSpheres(n_samples=200), clf, rows, target=1, key=jax.random.key(0))
    assert all(len(shape) == 2 for shape in calls) and max(s[0] for s in calls) > len(rows)  # batched host calls
    converged = np.asarray(res.outcome)[:, 0] == cfx.OUTCOMES.index("converged")
    assert converged.all()
    assert (predict_proba(np.asarray(res.counterfactuals)[:, 0]).argmax(1) == 1).all()  # valid by torch itself


def test_translations_save_and_load_bit_identically(problem, tmp_path):
    Xtr, ytr, Xte, _ = problem
    pipe = make_pipeline(StandardScaler(), MLPClassifier((6,), max_iter=50, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(Xtr, ytr)
    forest = RandomForestClassifier(5, max_depth=3, random_state=0).fit(Xtr, (ytr > 0).astype(int))
    for est, gen in ((pipe, cfx.generators.Generic()), (forest, cfx.generators.FeatureTweak())):
        clf = cfx.models.from_sklearn(est)
        cfx.save(tmp_path / type(est).__name__, classifier=clf)
        back = cfx.load(tmp_path / type(est).__name__)["classifier"]
        assert type(back.apply_fn) is type(clf.apply_fn) and back.differentiable == clf.differentiable
        np.testing.assert_array_equal(np.asarray(back.logits(Xte)), np.asarray(clf.logits(Xte)))
        a, b = (cfx.generate(gen, c, Xte[:4], target=1, key=jax.random.key(0), max_steps=20) for c in (clf, back))
        np.testing.assert_array_equal(np.asarray(a.counterfactuals), np.asarray(b.counterfactuals))
    black_box = cfx.models.from_predict_proba(forest.predict_proba, 5, 2)
    with pytest.raises(TypeError, match="HostProbabilities.*from_sklearn.*from_predict_proba is host code"):
        cfx.save(tmp_path / "bb", classifier=black_box)

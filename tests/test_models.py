"""cfx.models: MLP, deep ensemble, training loop (accuracy, determinism, warm start, errors)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import compile_counts
from sklearn.datasets import make_blobs

import cfx.models as models
from cfx.data.dataset import Dataset, FeatureSchema


def _trees_equal(a, b) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def _mlp_kwargs():
    # Same architecture as the session fixture, so these fits reuse its compiled epoch.
    return dict(model="mlp", widths=(32, 32))


# --- accuracy -------------------------------------------------------------------------


def test_mlp_accuracy_on_moons(moons_mlp, moons_split):
    _, test = moons_split
    assert models.accuracy(moons_mlp, test) > 0.95
    assert models.accuracy(moons_mlp, test.X, test.y) == models.accuracy(moons_mlp, test)
    assert moons_mlp.n_classes == 2 and moons_mlp.n_features == 2


def test_ensemble_accuracy_on_moons(moons_ensemble, moons_split):
    _, test = moons_split
    assert models.accuracy(moons_ensemble, test) > 0.93
    assert models.is_ensemble(moons_ensemble)
    # Members were trained from different keys: their parameters differ.
    kernels = moons_ensemble.params["params"]["hidden_0"]["kernel"]
    assert kernels.shape == (5, 2, 32)
    assert not np.allclose(kernels[0], kernels[1])


def test_default_fit_on_moons(moons_split):
    train, test = moons_split
    clf = models.fit(train)
    assert models.accuracy(clf, test) > 0.95


# --- ensemble semantics -------------------------------------------------------------


def test_ensemble_probs_are_mean_of_member_softmaxes(moons_ensemble, moons_split):
    _, test = moons_split
    x = jnp.asarray(test.X[:50])
    per_member = moons_ensemble.apply_fn.member_logits(moons_ensemble.params, x)
    assert per_member.shape == (5, 50, 2)
    expected = jnp.mean(jax.nn.softmax(per_member, axis=-1), axis=0)
    np.testing.assert_allclose(moons_ensemble.probs(x), expected, rtol=1e-5, atol=1e-6)
    # logits are already normalised log-probabilities
    np.testing.assert_allclose(jnp.exp(moons_ensemble.logits(x)), expected, rtol=1e-5, atol=1e-6)
    # single example and the classifier-level helper agree
    np.testing.assert_allclose(moons_ensemble.probs(x[0]), expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(models.member_logits(moons_ensemble, x), per_member, rtol=1e-6)
    assert models.member_logits(moons_ensemble, x[0]).shape == (5, 2)


def test_member_logits_of_single_model(moons_mlp, moons_split):
    x = jnp.asarray(moons_split[1].X[:7])
    out = models.member_logits(moons_mlp, x)
    assert out.shape == (1, 7, 2)
    np.testing.assert_allclose(out[0], moons_mlp.logits(x), rtol=1e-6)
    assert not models.is_ensemble(moons_mlp)


def test_average_probability_logits_closed_form():
    f = jnp.array([[[0.0, 2.0]], [[1.0, -1.0]]])  # (M=2, n=1, C=2)
    p = 0.5 * (jax.nn.softmax(f[0]) + jax.nn.softmax(f[1]))
    np.testing.assert_allclose(models.average_probability_logits(f), jnp.log(p), rtol=1e-6)


# --- multiclass, custom modules, linear ------------------------------------------------


@pytest.fixture(scope="module")
def blobs4():
    X, y = make_blobs(n_samples=400, centers=4, n_features=3, cluster_std=1.0, random_state=1)
    return Dataset(X, y, FeatureSchema.default(3), name="blobs4").split(test_size=0.25, seed=0)


def test_multiclass_mlp_and_ensemble(blobs4):
    train, test = blobs4
    clf = models.fit(train, "mlp", widths=(16,), epochs=40, learning_rate=5e-3, seed=0)
    assert clf.n_classes == 4 and clf.probs(test.X).shape == (len(test), 4)
    assert models.accuracy(clf, test) > 0.9
    ens = models.fit(train, "ensemble", widths=(16,), n_members=3, epochs=40, learning_rate=5e-3, seed=0)
    assert ens.apply_fn.member_logits(ens.params, jnp.asarray(test.X)).shape == (3, len(test), 4)
    np.testing.assert_allclose(np.asarray(ens.probs(test.X)).sum(-1), 1.0, rtol=1e-5)
    assert models.accuracy(ens, test) > 0.9


class _TinyNet(nn.Module):
    """A user's own module with a train flag and dropout."""

    n_out: int = 2

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.tanh(nn.Dense(16)(x))
        h = nn.Dropout(0.1, deterministic=not train)(h)
        return nn.Dense(self.n_out)(h)


class _OneLogit(nn.Module):
    """Binary model with one output logit (logit-BCE); presented as [0, f]."""

    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.swish(nn.Dense(16)(x)))


def test_custom_flax_module_via_fit(moons_split):
    train, test = moons_split
    clf = models.fit(train, _TinyNet(), epochs=40, learning_rate=1e-2, seed=0)
    assert models.accuracy(clf, test) > 0.9
    # inference is deterministic even though the module has dropout
    np.testing.assert_array_equal(clf.logits(test.X), clf.logits(test.X))
    one = models.fit(train, _OneLogit(), epochs=40, learning_rate=1e-2, seed=0)
    assert one.n_classes == 2 and one.probs(test.X).shape == (len(test), 2)
    assert models.accuracy(one, test) > 0.9


def test_mlp_dropout_only_in_training():
    mlp = models.MLP(widths=(8,), dropout=0.5, activation="swish")
    x = jnp.ones((4, 3))
    variables = mlp.init(jax.random.key(0), x)
    np.testing.assert_array_equal(mlp.apply(variables, x), mlp.apply(variables, x))
    a = mlp.apply(variables, x, train=True, rngs={"dropout": jax.random.key(1)})
    b = mlp.apply(variables, x, train=True, rngs={"dropout": jax.random.key(2)})
    assert not np.allclose(a, b)


def test_linear_model_is_logistic_regression():
    X, y = make_blobs(n_samples=300, centers=[[-2, 0], [2, 0]], cluster_std=0.7, random_state=0)
    train, test = Dataset(X, y, FeatureSchema.default(2)).split(0.2, seed=0)
    clf = models.fit(train, "linear", epochs=30, learning_rate=1e-2, seed=0)
    assert set(clf.params["params"]) == {"logits"}  # no hidden layers
    assert models.accuracy(clf, test) > 0.97


def test_plain_jax_linear_classifier(linear_classifier):
    x = jnp.array([[0.0, 0.0], [1.0, 1.0], [0.5, 0.5], [2.0, -0.5]])
    p1 = jax.nn.sigmoid(x[:, 0] + x[:, 1] - 1.0)
    np.testing.assert_allclose(linear_classifier.probs(x)[:, 1], p1, rtol=1e-6)
    np.testing.assert_array_equal(linear_classifier.predict(x), (x.sum(1) > 1.0).astype(int))
    assert models.member_logits(linear_classifier, x).shape == (1, 4, 2)
    assert models.accuracy(linear_classifier, x, np.array([1, 1, 0, 1])) == 0.75


# --- determinism, warm start, no retrace ------------------------------------------------


def test_same_seed_same_params(moons_split):
    train, _ = moons_split
    a = models.fit(train, **_mlp_kwargs(), epochs=3, seed=7)
    b = models.fit(train, **_mlp_kwargs(), epochs=3, seed=7)
    c = models.fit(train, **_mlp_kwargs(), epochs=3, seed=8)
    assert _trees_equal(a.params, b.params)
    assert not _trees_equal(a.params, c.params)


def test_fit_is_the_epochs_with_keys_folded_per_epoch(moons_split):
    """fit derives epoch e's key as fold_in(k_train, e) inside the compiled epoch: the same
    parameters as calling the epoch with the eagerly folded keys."""
    from cfx.models import train as _train

    train, _ = moons_split
    fitted, state = models.fit(train, **_mlp_kwargs(), epochs=2, seed=5, return_state=True)
    X, y = _train._check_dataset(train)
    apply, _, _ = _train._build(
        "mlp", X.shape[1], n_classes=2, widths=(32, 32), activation="relu", dropout=0.0, n_members=1
    )
    k_init, k_train = jax.random.split(jax.random.key(5))
    params = apply.init(k_init, X.shape[1])
    manual = _train.TrainState(
        step=jnp.zeros((), jnp.int32), params=params, opt_state=_train._init_opt_state(params, 1e-3, 0.0), extra=None
    )
    spec = _train._Spec(apply=apply, loss=models.cross_entropy, batch_size=64)
    for epoch in range(2):
        manual, _ = _train._run_epoch(spec, manual, jnp.asarray(X), jnp.asarray(y), jax.random.fold_in(k_train, epoch))
    assert _trees_equal(manual.params, fitted.params)


def test_warm_start_does_not_retrace(moons_mlp, moons_ensemble, moons_split):
    train, test = moons_split
    before = compile_counts.fit()
    # new seed, learning rate and weight decay: all array leaves, so no new compilation
    warm = models.fit(
        train, **_mlp_kwargs(), epochs=2, seed=3, learning_rate=1e-5, weight_decay=1e-4, init_params=moons_mlp.params
    )
    warm_ens = models.fit(train, "ensemble", widths=(32, 32), n_members=5, epochs=2, seed=3, init_params=moons_ensemble)
    assert compile_counts.fit() == before
    # it really started from the given parameters (tiny lr: barely moved, still accurate)
    delta = jax.tree_util.tree_map(lambda p, q: float(jnp.max(jnp.abs(p - q))), warm.params, moons_mlp.params)
    assert 0.0 < max(jax.tree_util.tree_leaves(delta)) < 1e-3
    assert models.accuracy(warm, test) > 0.95 and models.accuracy(warm_ens, test) > 0.93
    # equal apply_fn across fits: anything jitted over a Classifier is reused too
    assert warm.apply_fn == moons_mlp.apply_fn
    traces = []

    @jax.jit
    def f(clf, x):
        traces.append(1)
        return clf.raw_logits(x)

    f(moons_mlp, test.X)
    f(warm, test.X)
    assert len(traces) == 1


def test_ragged_batches_and_small_data():
    # n = 10 < batch_size: the batch is capped at n; n = 11 with batch 4 pads the last batch.
    X = np.array([[-1.0, 0.0]] * 5 + [[1.0, 0.0]] * 5 + [[1.2, 0.1]], np.float32)
    y = np.array([0] * 5 + [1] * 6)
    data = Dataset(X, y, FeatureSchema.default(2))
    for bs in (64, 4):
        clf = models.fit(data, "linear", epochs=50, batch_size=bs, learning_rate=5e-2)
        assert models.accuracy(clf, data) == 1.0


def test_batch_loss_ignores_zero_weight_slots():
    member = models.ModuleApply(models.MLP(widths=(), n_classes=2))
    params = member.init(jax.random.key(0), 2)
    x = jnp.array([[1.0, 2.0], [0.5, -1.0], [9.0, 9.0]])
    y = jnp.array([0, 1, 1])
    masked = models.batch_loss(member, params, x, y, jnp.array([1.0, 1.0, 0.0]), None)
    logp = jax.nn.log_softmax(member(params, x[:2]))
    np.testing.assert_allclose(masked, -(logp[0, 0] + logp[1, 1]) / 2, rtol=1e-6)


# --- registry and bad input -------------------------------------------------------------


def test_list_models():
    names = models.list_models()
    assert {"mlp", "ensemble", "linear"} <= set(names)
    assert all(isinstance(v, str) and v for v in names.values())


def test_bad_inputs(moons_split, moons_mlp):
    train, _ = moons_split
    with pytest.raises(ValueError, match=r"unknown model 'cnn'.*ensemble.*linear.*mlp"):
        models.fit(train, "cnn")
    with pytest.raises(TypeError, match="model must be"):
        models.fit(train, 3)
    X = train.X.copy()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        models.fit(Dataset(X, train.y, train.schema))
    with pytest.raises(ValueError, match="epochs"):
        models.fit(train, epochs=0)
    with pytest.raises(ValueError, match="batch_size"):
        models.fit(train, batch_size=0)
    with pytest.raises(ValueError, match="learning_rate"):
        models.fit(train, learning_rate=-1.0)
    with pytest.raises(ValueError, match="activation"):
        models.fit(train, activation="nope")
    with pytest.raises(ValueError, match="n_members"):
        models.fit(train, "ensemble", n_members=0)
    with pytest.raises(ValueError, match="init_params"):
        models.fit(train, "mlp", widths=(16,), init_params=moons_mlp.params)
    with pytest.raises(TypeError, match="dataset"):
        models.fit(np.zeros((3, 2)))


def test_fit_progress_in_a_log_is_plain_lines(moons_split, capsys):
    train, _ = moons_split
    models.fit(train, epochs=20, widths=(8,), progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10 and "\r" not in "".join(lines)
    assert lines[-1].startswith("fit mlp: epoch 20/20, loss ")

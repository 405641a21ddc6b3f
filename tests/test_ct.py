"""Counterfactual training: the loss (closed forms), the epoch's counterfactuals (invariants),
fitting (no recompilation, dispatch, bad input) and the evaluation helpers.

One tiny CT fit (moons, 100 rows, an MLP (8,), 2 epochs, n_ce 32, T = 5) is shared; its
shapes match configs/ct_smoke.yaml so the end-to-end test (test_ct_experiment.py) reuses
the compiled epoch.
"""

from __future__ import annotations

import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import compile_counts

import cfx
from cfx.classifier import Classifier
from cfx.constraints import INCREASE, NONE, DECREASE
from cfx.generators import ECCo
from cfx.models.step import Batch
from cfx.training import CTConfig, Counterfactuals, CTWeights, ct_loss, fit_ct, protect
from cfx.training import evaluation as E

FIT = dict(widths=(8,), epochs=2, batch_size=32, learning_rate=0.01)


@pytest.fixture(scope="module")
def moons_small():
    data = cfx.data.load("moons", n=100, seed=0)
    return cfx.data.train_test(data)


@pytest.fixture(scope="module")
def ct_fit(moons_small):
    train, _ = moons_small
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fit_ct(train, "mlp", ct=CTConfig(n_ce=1000, max_steps=5, protected=(0,)), **FIT)
    return out, caught


# ----------------------------------------------------------------------------- the loss
def _linear(params, x, key=None):
    return x @ params["W"] + params["b"]


def test_ct_loss_matches_the_formula():
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=2).astype(np.float32)
    params = {"W": jnp.asarray(W), "b": jnp.asarray(b)}
    x, y = rng.normal(size=(4, 3)).astype(np.float32), np.array([0, 1, 1, 0], np.int32)
    cf = Counterfactuals(
        x_ce=jnp.asarray(rng.normal(size=(2, 3)), jnp.float32),
        x_plus=jnp.asarray(rng.normal(size=(2, 3)), jnp.float32),
        y_plus=jnp.array([1, 0]),
        x_ae=jnp.asarray(rng.normal(size=(2, 3)), jnp.float32),
        y_ae=jnp.array([0, 1]),
        w=jnp.array([1.0, 0.0]),
        mature=jnp.array([True, False]),
        x=jnp.zeros((2, 3), jnp.float32),
    )
    mut = np.array([NONE, INCREASE, 0])
    weights = CTWeights.create((1.0, 0.5, 0.1, 0.25), mut)
    batch = Batch(jnp.asarray(x), jnp.asarray(y), jnp.ones(4))
    loss_fn = jax.jit(lambda p, c: ct_loss(p, batch, c, None, apply=_linear, weights=weights))
    loss, aux = loss_fn(params, cf)

    def ce(z, lab):
        f = z @ W + b
        return np.mean(np.log(np.exp(f).sum(-1)) - f[np.arange(len(lab)), lab])

    xc, xp = np.asarray(cf.x_ce[:1]), np.asarray(cf.x_plus[:1]).copy()  # slot 1 has weight 0
    xp[:, 0], xp[:, 1] = xc[:, 0], np.maximum(xp[:, 1], xc[:, 1])
    f_plus, f_ce = (xp @ W + b)[0, 1], (xc @ W + b)[0, 1]
    expected = (
        ce(x, y)
        + 0.5 * (f_ce - f_plus)
        + 0.1 * (f_plus**2 + f_ce**2)
        + 0.25 * ce(np.asarray(cf.x_ae[:1]), np.array([0]))
    )
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    np.testing.assert_allclose(float(aux["div"]), f_ce - f_plus, rtol=1e-5)
    # counterfactuals are inputs: no gradient flows into them
    g = jax.jit(jax.grad(lambda c: loss_fn(params, c)[0], allow_int=True))(cf)
    assert float(jnp.abs(g.x_ce).sum() + jnp.abs(g.x_plus).sum() + jnp.abs(g.x_ae).sum()) == 0.0


def test_ct_train_step_is_one_sgd_step_on_ct_loss():
    import optax

    from cfx.models.step import TrainState
    from cfx.training import ct_train_step

    rng = np.random.default_rng(2)
    params = {"W": jnp.asarray(rng.normal(size=(2, 2)), jnp.float32), "b": jnp.zeros(2, jnp.float32)}
    batch = Batch(jnp.asarray(rng.normal(size=(4, 2)), jnp.float32), jnp.array([0, 1, 0, 1]), jnp.ones(4))
    cf = Counterfactuals.empty(3, 2).replace(
        x_ce=jnp.ones((3, 2)), x_plus=-jnp.ones((3, 2)), w=jnp.ones(3), y_plus=jnp.array([1, 1, 0])
    )
    weights = CTWeights.create((1.0, 0.5, 0.1, 0.25), np.zeros(2))
    tx = optax.sgd(0.1)
    state, metrics = ct_train_step(
        TrainState.create(params, tx), batch, cf, jax.random.key(0), weights=weights, apply=_linear, tx=tx
    )
    grads = jax.jit(jax.grad(lambda p: ct_loss(p, batch, cf, None, apply=_linear, weights=weights)[0]))(params)
    for k in params:
        np.testing.assert_allclose(
            np.asarray(state.params[k]), np.asarray(params[k] - 0.1 * grads[k]), rtol=1e-5, atol=1e-6
        )
    assert int(state.step) == 1 and set(metrics) >= {"loss", "ce", "div", "reg", "adv"}


def test_protect_sets_protected_features_from_the_counterfactual():
    x_plus = jnp.array([[1.0, 1.0, 1.0, 1.0]])
    x_cf = jnp.array([[5.0, 5.0, -5.0, 7.0]])
    out = protect(x_plus, x_cf, jnp.array([NONE, INCREASE, DECREASE, 0]))
    np.testing.assert_array_equal(np.asarray(out), [[5.0, 5.0, -5.0, 1.0]])


# ----------------------------------------------------------------------------- fitting
def test_ct_fit_counterfactuals_and_capping(ct_fit, moons_small):
    out, caught = ct_fit
    train, _ = moons_small
    assert out.info["n_ce_capped"] and out.info["n_ce"] == len(train) and out.info["n_ce_requested"] == 1000
    assert any("n_ce=1000 exceeds" in str(w.message) for w in caught)
    assert out.info["immutable"] == [0]
    for k in ("loss", "ce", "div", "reg", "adv", "mature_share", "search_steps"):
        assert out.history[k].shape == (2,) and np.all(np.isfinite(out.history[k])), k
    cf = jax.device_get(out.counterfactuals)
    # nascent counterfactuals stay in the L-inf ball; the protected feature never moves in the search
    assert np.all(np.max(np.abs(cf.x_ae - cf.x), axis=-1) <= 0.3 + 1e-6)
    np.testing.assert_array_equal(cf.x_ce[cf.mature, 0], cf.x[cf.mature, 0])
    np.testing.assert_array_equal(cf.x_ae[:, 0], cf.x[:, 0])
    # non-converged searches are replaced by x+ (their divergence term is 0)
    np.testing.assert_array_equal(cf.x_ce[~cf.mature], cf.x_plus[~cf.mature])
    # x+ belongs to the target class
    rows = {tuple(r): c for r, c in zip(train.X, train.y)}
    assert all(rows[tuple(p)] == t for p, t in zip(cf.x_plus, cf.y_plus))


def test_no_recompilation_between_epochs_or_for_new_lambdas(ct_fit, moons_small):
    train, _ = moons_small
    before = compile_counts.ct()
    ct = CTConfig(n_ce=1000, max_steps=5, protected=(0,), lambda_div=2.0, lambda_adv=0.0, generator=ECCo(energy=1.0))
    clf = cfx.training.fit(train, "mlp", ct=ct, seed=3, **{**FIT, "epochs": 3}).classifier
    assert isinstance(clf, Classifier) and clf.n_features == 2
    assert compile_counts.ct() == before


def test_variants_select_the_weights():
    assert CTConfig(variant="contrastive").weights() == (1.0, 0.5, 0.1, 0.0)
    assert CTConfig(variant="adversarial").weights() == (1.0, 0.0, 0.0, 0.25)
    assert CTConfig(variant="baseline").weights() == (1.0, 0.0, 0.0, 0.0) and not CTConfig(variant="baseline").searches


def test_bad_input_raises_clear_errors(moons_small):
    train, _ = moons_small
    with pytest.raises(ValueError, match="lambda_div"):
        CTConfig(lambda_div=-0.1)
    with pytest.raises(ValueError, match="variant"):
        CTConfig(variant="nope")
    with pytest.raises(ValueError, match=r"protected: feature index 5 out of range \[0, 2\)"):
        fit_ct(train, "mlp", ct=CTConfig(protected=(5,)), **FIT)
    with pytest.raises(ValueError, match=r"objective must be 'ce' \(counterfactual training: cfx.training.fit\)"):
        cfx.models.fit(train, "mlp", objective="jem-ish")
    with pytest.raises(ValueError, match=r"moved to the layer above: .*cfx.training.fit\(dataset, model, ct="):
        cfx.models.fit(train, "mlp", objective="ct", ct=CTConfig(n_ce=8))
    with pytest.raises(ValueError, match="ensembles"):
        fit_ct(train, "ensemble", ct=CTConfig(n_ce=8), **FIT)

    class NaNModel(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(2)(jnp.sqrt(x - 1e6))  # NaN everywhere

    with pytest.raises(ValueError, match="gradients are not finite"):
        fit_ct(train, NaNModel(), ct=CTConfig(n_ce=8), **FIT)
    # parameters that overflow during training: the epoch is named (its metrics are read
    # while the next epoch runs), nothing is returned; the fixture's shapes, no new compile
    with (
        pytest.raises(FloatingPointError, match="non-finite gradients in counterfactual training at epoch 0"),
        pytest.warns(UserWarning, match="n_ce=1000 exceeds"),
    ):
        fit_ct(train, "mlp", ct=CTConfig(n_ce=1000, max_steps=5, protected=(0,)), **{**FIT, "learning_rate": 1e38})


# ----------------------------------------------------------------------------- evaluation
def test_mmd_and_implausibility_closed_forms():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(6, 2)).astype(np.float32), rng.normal(size=(5, 2)).astype(np.float32) + 1.0
    k = lambda u, v: np.exp(-((u[:, None] - v[None]) ** 2).sum(-1) / (2 * 0.5**2))
    kaa, kbb = k(a, a), k(b, b)
    expected = (kaa.sum() - np.trace(kaa)) / 30 + (kbb.sum() - np.trace(kbb)) / 20 - 2 * k(a, b).mean()
    got = E.mmd2(a, b, jnp.ones(6), jnp.ones(5), 0.5)
    np.testing.assert_allclose(float(got), expected, rtol=1e-4, atol=1e-6)
    # padding with zero weight changes nothing
    pad = np.concatenate([a, np.full((3, 2), 9.0, np.float32)])
    np.testing.assert_allclose(
        float(E.mmd2(pad, b, jnp.array([1.0] * 6 + [0.0] * 3), jnp.ones(5), 0.5)), expected, rtol=1e-4, atol=1e-6
    )
    bank, mask = E.sample_bank(b, np.zeros(5, int), 2, 8)
    ip = E.ip(a, np.zeros(6, int), bank, mask)
    np.testing.assert_allclose(ip, np.abs(a[:, None] - b[None]).sum(-1).mean(1), rtol=1e-5)
    cf, valid = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), np.array([True, False, True])
    assert E.cost(np.zeros((3, 2)), cf, valid) == 7.0 and E.cost(np.zeros((3, 2)), cf, valid, [1]) == 4.0
    assert np.isnan(E.cost(np.zeros((3, 2)), cf, np.zeros(3, bool)))
    est, lo, hi = E.reduction_ci(np.full(50, 2.0), np.full(40, 1.0), n_boot=50)
    assert est == pytest.approx(50.0) and lo == pytest.approx(50.0) and hi == pytest.approx(50.0)


def test_integrated_gradients_completeness_and_robust_accuracy(linear_classifier):
    x = jnp.array([[2.0, 1.0], [-1.0, 0.5], [0.2, 0.1]])
    ig = np.asarray(E.integrated_gradients(linear_classifier, x, jnp.zeros(2), steps=8))
    logits = np.asarray(linear_classifier.logits(x))
    pred = logits.argmax(-1)
    base = np.asarray(linear_classifier.logits(jnp.zeros(2)))
    np.testing.assert_allclose(ig.sum(-1), logits[np.arange(3), pred] - base[pred], rtol=1e-5)  # completeness
    y = pred.astype(np.int32)
    r = E.robust_accuracy(linear_classifier, x, y, [0.0, 0.05, 3.0], key=jax.random.key(0), steps=5)
    assert r["fgsm"][0] == r["pgd"][0] == 1.0  # ε = 0: clean accuracy
    assert np.all(np.diff(r["fgsm"]) <= 0) and r["pgd"][-1] < 1.0
    assert E.accuracy(linear_classifier, x, y) == 1.0


def test_counterfactual_step_shapes_without_compiling(ct_fit, moons_small):
    """The standalone counterfactual step traces to n_ce slots of the right shapes (eval_shape: no compile)."""
    from cfx.models import train as _train
    from cfx.training import EpochSpec, TrainingData, counterfactual_step, search_constraints

    out, _ = ct_fit
    train, _ = moons_small
    ct = CTConfig(n_ce=16, max_steps=5, protected=(0,))
    spec = EpochSpec(
        apply=out.classifier.apply_fn,
        n_features=2,
        n_classes=2,
        batch_size=32,
        n_ce=16,
        max_steps=5,
        epsilon=0.3,
        tx=_train._TX,
    )
    data = TrainingData.create(train.X, train.y, 2)
    cfs, info = jax.eval_shape(
        lambda p, k: counterfactual_step(p, data, k, ct.generator, search_constraints(train, ct).resolve(2), spec=spec),
        out.classifier.params,
        jax.random.key(0),
    )
    assert cfs.x_ce.shape == cfs.x_ae.shape == cfs.x_plus.shape == (16, 2) and cfs.y_plus.shape == (16,)
    assert set(info) == {"mature_share", "search_steps", "box_share", "box_distance", "cf_l1", "nascent_moved"}

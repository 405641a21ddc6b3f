"""Split-conformal calibration: coverage, set sizes, the smooth set size, and the Classifier contract."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import compile_counts

import cfx
from cfx.models.conformal import ConformalClassifier, calibrate, conformal_quantile, smooth_set_size

KEY = jax.random.key(0)


def bayes_linear(params, x):
    return x @ params["W"]


@pytest.fixture(scope="module")
def overlapping():
    """Overlapping blobs (std 0.5 at ±(0.5, 0.5)) and their Bayes-optimal linear model
    f_1 − f_0 = 4 (x_0 + x_1); calibration / held-out halves of 2000 rows each."""
    data = cfx.data.load("overlapping", n=4000, seed=0)
    cal, held_out = data.split(test_size=0.5, seed=0)
    clf = cfx.Classifier(bayes_linear, {"W": jnp.array([[-2.0, 2.0], [-2.0, 2.0]])}, n_features=2)
    return clf, cal, held_out


@pytest.mark.parametrize("alpha", [0.1, 0.2])
def test_coverage_on_held_out_data_is_close_to_one_minus_alpha(overlapping, alpha):
    clf, cal, held_out = overlapping
    conf = calibrate(clf, cal, alpha=alpha)
    assert abs(conf.coverage(held_out.X, held_out.y) - (1 - alpha)) < 0.03
    corrected = calibrate(clf, cal, alpha=alpha, finite_sample=True)
    assert float(corrected.q_hat) >= float(conf.q_hat)
    assert corrected.coverage(held_out.X, held_out.y) >= 1 - alpha - 0.03


def test_sets_shrink_as_alpha_grows(overlapping):
    clf, cal, held_out = overlapping
    sizes = [float(calibrate(clf, cal, alpha=a).set_sizes(held_out.X).mean()) for a in (0.02, 0.05, 0.1, 0.2, 0.4)]
    assert all(a >= b for a, b in zip(sizes, sizes[1:])) and sizes[0] > sizes[-1]
    conf = calibrate(clf, cal, alpha=0.1)
    sets = np.asarray(conf.prediction_sets(held_out.X))
    assert sets.shape == (len(held_out), 2) and sets.dtype == bool
    probs = np.asarray(clf.probs(held_out.X))
    np.testing.assert_array_equal(sets, 1 - probs <= float(conf.q_hat))


def test_quantiles_are_the_plain_and_the_corrected_order_statistic():
    scores = np.arange(1, 101) / 100.0  # 0.01 .. 1.00
    assert conformal_quantile(scores, 0.1) == pytest.approx(np.quantile(scores, 0.9))
    assert conformal_quantile(scores, 0.1, finite_sample=True) == pytest.approx(0.91)  # ceil(101 * 0.9) = 91st


def test_smooth_set_size_matches_a_hand_computation(linear_classifier):
    conf = ConformalClassifier(
        linear_classifier.apply_fn, linear_classifier.params, 2, q_hat=0.6, temperature=0.1, kappa=1.0
    )
    x = np.array([[0.5, 0.5], [2.0, 1.0], [-1.0, 0.0]], np.float32)
    p1 = 1 / (1 + np.exp(-(x.sum(1) - 1)))
    probs = np.stack([1 - p1, p1], 1)
    sig = 1 / (1 + np.exp(-(0.6 - (1 - probs)) / 0.1))
    expected = np.maximum(0.0, sig.sum(1) - 1.0)
    np.testing.assert_allclose(conf.smooth_set_size(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(smooth_set_size(jnp.asarray(probs), 0.6), expected, rtol=1e-5, atol=1e-6)
    assert float(conf.smooth_set_size(x[0])) == pytest.approx(expected[0], rel=1e-5)  # one example
    assert expected[0] > expected[1] > 0  # largest at the boundary p = (0.5, 0.5): 2·σ(1) − 1


def test_a_conformal_classifier_is_a_classifier_under_generate_and_jit(linear_classifier, moons_split):
    train, _ = moons_split
    conf = calibrate(linear_classifier, train, alpha=0.05)
    assert isinstance(conf, cfx.Classifier) and conf.n_classes == 2
    x = np.array([[-1.0, 0.5], [0.0, 0.2]], np.float32)
    np.testing.assert_allclose(conf.logits(x), linear_classifier.logits(x))
    plain = cfx.generate(cfx.generators.Generic(), linear_classifier, x, 1, key=KEY)
    wrapped = cfx.generate(cfx.generators.Generic(), conf, x, 1, key=KEY)
    np.testing.assert_allclose(wrapped.counterfactuals, plain.counterfactuals)
    # q̂ and params are leaves: a new calibration or new parameters never retrace
    traces = []

    @jax.jit
    def omega(c, x):
        traces.append(1)
        return c.raw_smooth_set_size(x)

    omega(conf, x)
    recal = calibrate(linear_classifier, train, alpha=0.3)
    moved = conf.replace(jax.tree_util.tree_map(lambda p: 2 * p, conf.params))
    assert isinstance(moved, ConformalClassifier) and float(moved.q_hat) == float(conf.q_hat)
    for c in (recal, moved):
        np.testing.assert_allclose(omega(c, x), c.smooth_set_size(x), rtol=1e-6)
    assert len(traces) == 1
    before = compile_counts.search()
    cfx.generate(cfx.generators.Generic(), recal, x, 1, key=KEY)
    assert compile_counts.search() == before
    # evaluation contexts take the calibrated q̂ when none is given
    assert float(cfx.evaluation.context(conf).q_hat) == float(conf.q_hat)
    assert float(cfx.evaluation.context(conf, q_hat=0.3).q_hat) == pytest.approx(0.3)
    assert cfx.evaluation.context(linear_classifier).q_hat is None


def test_bad_input_is_refused_with_the_argument_named(linear_classifier, moons_split):
    train, _ = moons_split
    for alpha in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="alpha"):
            calibrate(linear_classifier, train, alpha=alpha)
    with pytest.raises(ValueError, match=r"calibration_data.X must have shape \(n, 2\)"):
        calibrate(linear_classifier, (np.zeros((30, 3)), np.zeros(30, int)))
    with pytest.raises(ValueError, match="calibration_data.y has labels"):
        calibrate(linear_classifier, (train.X, np.full(len(train), 2)))
    with pytest.raises(ValueError, match="calibration_data.y must have shape"):
        calibrate(linear_classifier, (train.X, train.y[:-1]))
    with pytest.raises(ValueError, match="calibration_data has 10 rows; alpha=0.05 needs at least 19"):
        calibrate(linear_classifier, (train.X[:10], train.y[:10]), alpha=0.05)
    with pytest.raises(ValueError, match="temperature"):
        calibrate(linear_classifier, train, temperature=0.0)
    with pytest.raises(ValueError, match="kappa"):
        calibrate(linear_classifier, train, kappa=-1.0)
    with pytest.raises(TypeError, match="calibration_data"):
        calibrate(linear_classifier, train.X)

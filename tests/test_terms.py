"""Every term of `cfx.terms` on its own, against a numpy closed form (as optax tests its losses)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cfx import terms
from cfx.classifier import Classifier

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(6, 4)).astype(np.float32) * 3
TARGETS = np.array([0, 1, 2, 3, 1, 0])


def np_softmax(f):
    e = np.exp(f - f.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def each(fn, logits, targets):
    return np.array([fn(jnp.asarray(f), jnp.asarray(t)) for f, t in zip(logits, targets)])


def test_cross_entropy():
    expected = -np.log(np_softmax(LOGITS)[np.arange(6), TARGETS])
    np.testing.assert_allclose(each(terms.cross_entropy, LOGITS, TARGETS), expected, rtol=1e-5)


def test_logit_bce():
    f, t = LOGITS[:, :2], TARGETS % 2
    margin = f[:, 1].astype(np.float64) - f[:, 0]
    p1 = 1 / (1 + np.exp(-margin))
    expected = -np.where(t == 1, np.log(p1), np.log1p(-p1))
    np.testing.assert_allclose(each(terms.logit_bce, f, t), expected, rtol=1e-5)


@pytest.mark.parametrize("margin", [0.0, 1.0, 5.0])
def test_hinge(margin):
    picked = LOGITS[np.arange(6), TARGETS]
    others = np.where(np.arange(4)[None] == TARGETS[:, None], -np.inf, LOGITS).max(-1)
    expected = np.maximum(0.0, margin - (picked - others))
    got = np.array([terms.hinge(jnp.asarray(f), t, margin) for f, t in zip(LOGITS, TARGETS)])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_mse_probs():
    expected = ((np_softmax(LOGITS) - np.eye(4)[TARGETS]) ** 2).sum(-1)
    np.testing.assert_allclose(each(terms.mse_probs, LOGITS, TARGETS), expected, rtol=1e-5)


def test_predictive_entropy():
    p = np_softmax(LOGITS)
    np.testing.assert_allclose(each(terms.predictive_entropy, LOGITS, TARGETS), -(p * np.log(p)).sum(-1), rtol=1e-5)


def test_distances():
    a, b = RNG.normal(size=5).astype(np.float32), RNG.normal(size=5).astype(np.float32)
    mad = np.abs(RNG.normal(size=5)).astype(np.float32) + 0.1
    np.testing.assert_allclose(terms.l1(a, b), np.abs(a - b).sum(), rtol=1e-6)
    np.testing.assert_allclose(terms.l2(a, b), np.linalg.norm(a - b), rtol=1e-6)
    np.testing.assert_allclose(terms.squared_l2(a, b), ((a - b) ** 2).sum(), rtol=1e-6)
    np.testing.assert_allclose(terms.mse(a, b), ((a - b) ** 2).mean(), rtol=1e-6)
    np.testing.assert_allclose(terms.mad_l1(a, b, mad), (np.abs(a - b) / mad).sum(), rtol=1e-6)
    # the epsilon under the root keeps the gradient finite (zero) at a = b
    assert np.all(np.asarray(jax.grad(terms.l2)(jnp.asarray(a), jnp.asarray(a))) == 0)


def test_dice_diversity():
    x_cfs = RNG.normal(size=(3, 4)).astype(np.float32)
    dist = np.linalg.norm(x_cfs[:, None] - x_cfs[None], axis=-1)
    kernel = 1 / (1 + dist) + 1e-4 * np.eye(3)
    np.testing.assert_allclose(terms.dice_diversity(jnp.asarray(x_cfs), None, None), -np.linalg.det(kernel), rtol=1e-4)
    # K identical counterfactuals: a singular kernel up to the jitter, the least diverse set
    same = np.repeat(x_cfs[:1], 3, 0)
    assert abs(float(terms.dice_diversity(jnp.asarray(same), None, None))) < 1e-6


def _linear_classifier():
    W = jnp.array([[0.0, 1.0], [0.0, 1.0]])  # f1 − f0 = x0 + x1
    return Classifier(lambda p, x: x @ p, W, n_features=2)


def test_model_loss_and_its_gate():
    clf = _linear_classifier()
    x_cf, x = jnp.array([0.3, -0.1]), jnp.zeros(2)
    logits = clf.raw_logits(x_cf)
    ctx = terms.TermContext(target=jnp.array(1), logits=logits, step=jnp.array(0), classifier=clf)
    p1 = 1 / (1 + np.exp(-0.2))
    np.testing.assert_allclose(terms.model_loss()(x_cf, x, ctx), -np.log(p1), rtol=1e-5)
    # gated: on once p(y+) >= gate (here p = 0.55), else exactly 0
    np.testing.assert_allclose(terms.model_loss(gate=0.5)(x_cf, x, ctx), -np.log(p1), rtol=1e-5)
    assert float(terms.model_loss(gate=0.6)(x_cf, x, ctx)) == 0.0


def test_model_loss_averages_ensemble_members():
    members = jnp.stack([jnp.array([[0.0, 1.0], [0.0, 1.0]]), jnp.array([[0.0, 3.0], [0.0, -1.0]])])

    def apply(p, x):
        return jnp.mean(jax.vmap(lambda w: x @ w)(p), 0)

    apply.member_logits = lambda p, x: jax.vmap(lambda w: x @ w)(p)
    clf = Classifier(apply, members, n_features=2)
    x_cf = jnp.array([0.5, 0.2])
    ctx = terms.TermContext(target=jnp.array(1), logits=clf.raw_logits(x_cf), step=jnp.array(0), classifier=clf)
    margins = np.array([0.7, 1.3])  # member margins f1 − f0: 0.5 + 0.2 and 3·0.5 − 0.2
    expected = np.mean(np.log1p(np.exp(-margins)))
    np.testing.assert_allclose(terms.model_loss()(x_cf, None, ctx), expected, rtol=1e-5)


def test_set_terms():
    x_cfs = jnp.asarray(RNG.normal(size=(3, 2)).astype(np.float32))
    x = jnp.asarray(RNG.normal(size=2).astype(np.float32))
    centre = jnp.asarray(RNG.normal(size=2).astype(np.float32))
    ctx = terms.TermContext(target=jnp.array(1), logits=jnp.zeros((3, 2)), step=jnp.array(0), data={"c": centre})
    np.testing.assert_allclose(terms.frobenius_to_factual(x_cfs, x, ctx), np.linalg.norm(x_cfs - x), rtol=1e-5)
    np.testing.assert_allclose(terms.frobenius_to_point("c")(x_cfs, x, ctx), np.linalg.norm(x_cfs - centre), rtol=1e-5)
    # ClaPROAR's set loss: 0 until every one of the K is predicted y+, then their mean CE
    clf = _linear_classifier()
    on = jnp.array([[1.0, 0.5], [0.2, 0.1], [2.0, 1.0]])
    off = on.at[1].set(jnp.array([-0.5, 0.1]))
    for cfs, expected_on in ((on, True), (off, False)):
        logits = jax.vmap(clf.raw_logits)(cfs)
        c = ctx.replace(logits=logits, classifier=clf)
        margins = np.asarray(cfs).sum(-1)
        expected = np.mean(np.log1p(np.exp(-margins))) if expected_on else 0.0
        np.testing.assert_allclose(terms.set_model_loss(cfs, None, c), expected, rtol=1e-5, atol=1e-7)


def test_dice_diversity_l1_and_the_jitter():
    x_cfs = RNG.normal(size=(4, 3)).astype(np.float32)
    dist = np.abs(x_cfs[:, None] - x_cfs[None]).sum(-1)
    for jitter in (0.0, 1e-2):
        kernel = 1 / (1 + dist) + jitter * np.eye(4)
        got = terms.dice_diversity(jnp.asarray(x_cfs), None, None, jitter=jitter, distance="l1")
        np.testing.assert_allclose(got, -np.linalg.det(kernel), rtol=1e-4, atol=1e-7)


def test_member_logit_bce_averages_member_logits_not_probabilities():
    members = jnp.stack([jnp.array([[0.0, 1.0], [0.0, 1.0]]), jnp.array([[0.0, 3.0], [0.0, -1.0]])])

    def apply(p, x):
        return jnp.mean(jax.vmap(lambda w: x @ w)(p), 0)

    apply.member_logits = lambda p, x: jax.vmap(lambda w: x @ w)(p)
    clf = Classifier(apply, members, n_features=2)
    x_cf = jnp.array([0.5, 0.2])
    ctx = terms.TermContext(target=jnp.array(1), logits=clf.raw_logits(x_cf), step=jnp.array(0), classifier=clf)
    margin = np.mean([0.7, 1.3])  # mean of the member margins f1 − f0
    np.testing.assert_allclose(terms.member_logit_bce(x_cf, None, ctx), np.log1p(np.exp(-margin)), rtol=1e-5)
    single = _linear_classifier()  # no members: logit_bce of the model's own logits
    c1 = ctx.replace(logits=single.raw_logits(x_cf), classifier=single)
    np.testing.assert_allclose(terms.member_logit_bce(x_cf, None, c1), np.log1p(np.exp(-0.7)), rtol=1e-5)


def test_distance_terms_and_the_yloss_term():
    x_cf, x = RNG.normal(size=3).astype(np.float32), RNG.normal(size=3).astype(np.float32)
    neighbours = RNG.normal(size=(5, 3)).astype(np.float32)
    ctx = terms.TermContext(
        target=jnp.array(2),
        logits=jnp.asarray(LOGITS[0]),
        step=jnp.array(0),
        data={"neighbours": jnp.asarray(neighbours)},
    )
    np.testing.assert_allclose(terms.distance_to_factual("l1")(x_cf, x, ctx), np.abs(x_cf - x).sum(), rtol=1e-6)
    np.testing.assert_allclose(
        terms.mean_distance_to_neighbours("squared_l2")(x_cf, x, ctx),
        ((x_cf - neighbours) ** 2).sum(-1).mean(),
        rtol=1e-5,
    )
    expected = -np.log(np_softmax(LOGITS[0])[2])
    np.testing.assert_allclose(terms.yloss_term("cross_entropy")(x_cf, x, ctx), expected, rtol=1e-5)
    np.testing.assert_allclose(terms.yloss_term(lambda f, t: f[t])(x_cf, x, ctx), LOGITS[0, 2], rtol=1e-6)


def test_the_models_weighted_cross_entropy():
    from cfx.models.losses import weighted_cross_entropy, weighted_mean

    w = np.array([1.0, 0.0, 2.0, 1.0, 0.5, 0.0], np.float32)  # zero weights: padded slots
    per = -np.log(np_softmax(LOGITS)[np.arange(6), TARGETS])
    np.testing.assert_allclose(
        weighted_cross_entropy(jnp.asarray(LOGITS), jnp.asarray(TARGETS), jnp.asarray(w)),
        (w * per).sum() / w.sum(),
        rtol=1e-5,
    )
    np.testing.assert_allclose(weighted_mean(jnp.asarray(per), jnp.asarray(w)), (w * per).sum() / w.sum(), rtol=1e-5)

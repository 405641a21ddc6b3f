"""ECCCo+ (PCA-space search) and ECCCo-L1 (L1 distance to the model's conditional samples)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import compile_counts

import cfx
from cfx import generators as G
from cfx.generators import pca
from cfx.generators.eccco import distance_to_samples
from cfx.terms import TermContext
from cfx.models.conformal import calibrate

KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def conformal(moons_split, moons_mlp):
    return calibrate(moons_mlp, moons_split[1], alpha=0.05)


@pytest.fixture(scope="module")
def factuals(moons_split, moons_mlp):
    train, _ = moons_split
    return train.X[np.asarray(moons_mlp.predict(train.X)) == 0][:8]


@pytest.fixture(scope="module")
def samples(conformal, moons_split):
    return cfx.sampling.conditional_samples(conformal, moons_split[0], key=KEY, n_chains=10, steps=50, keep=5)


def test_pca_is_an_orthonormal_affine_map():
    X = np.random.default_rng(0).normal(size=(200, 5)).astype(np.float32) @ np.diag([5, 3, 1, 0.5, 0.1])
    mean, W = pca.fit_pca(X, 3)
    np.testing.assert_allclose(W @ W.T, np.eye(3), atol=1e-5)
    np.testing.assert_allclose(mean, X.mean(0), atol=1e-5)
    full_mean, full = pca.fit_pca(X)
    np.testing.assert_allclose(pca.decode(pca.encode(X, full_mean, full), full_mean, full), X, atol=1e-4)
    # a projection: decoding twice changes nothing
    P = pca.decode(pca.encode(X, mean, W), mean, W)
    np.testing.assert_allclose(pca.decode(pca.encode(P, mean, W), mean, W), P, atol=1e-4)
    with pytest.raises(ValueError, match="n_components"):
        pca.fit_pca(X, 6)


def test_eccco_plus_searches_in_pca_space(conformal, factuals, moons_split):
    train, _ = moons_split
    gen = G.make("eccco_plus", n_components=1).fit(conformal, train, key=KEY)
    assert gen.pca_components.shape == (1, 2) and gen.q_hat is not None
    res = cfx.generate(gen, conformal, factuals, 1, key=KEY, max_steps=30)
    cf = np.asarray(res.counterfactuals[:, 0])
    # every counterfactual lies on the first principal line through the mean
    on_line = pca.decode(pca.encode(cf, gen.pca_mean, gen.pca_components), gen.pca_mean, gen.pca_components)
    np.testing.assert_allclose(cf, np.asarray(on_line), atol=1e-4)
    assert set(res.terms) == {"yloss", "distance", "energy", "set_size", "total"}
    assert G.ECCCoPlus().fit(conformal, train, key=KEY).pca_components.shape == (2, 2)  # None: all components


def test_eccco_plus_without_pca_or_calibration_is_refused_before_compiling(moons_mlp, conformal, factuals):
    before = compile_counts.search()
    with pytest.raises(ValueError, match="PCA"):
        cfx.generate(G.ECCCoPlus(q_hat=0.5), conformal, factuals, 1, key=KEY)
    with pytest.raises(ValueError, match=r"cfx\.models\.calibrate"):
        cfx.generate(G.ECCCoPlus(), moons_mlp, factuals, 1, key=KEY)
    assert compile_counts.search() == before


def test_samples_l1_term_is_the_mean_l1_distance_to_the_samples(moons_mlp):
    S = jnp.array([[0.0, 0.0], [1.0, 2.0], [-1.0, 0.5]])
    x_cf = jnp.array([0.5, 0.5])
    ctx = TermContext(jnp.int32(1), moons_mlp.raw_logits(x_cf[None])[0], jnp.int32(0), S, moons_mlp)
    expected = np.mean([1.0, 0.5 + 1.5, 1.5 + 0.0])
    assert float(distance_to_samples(x_cf, None, ctx)) == pytest.approx(expected, rel=1e-6)


def test_eccco_l1_moves_towards_the_conditional_samples(conformal, factuals, moons_split, samples):
    train, _ = moons_split
    gen = G.make("eccco_l1").fit(conformal, train, key=KEY, samples=samples)
    assert gen.samples.shape == (2, 5, 2)
    res = cfx.generate(gen, conformal, factuals, 1, key=KEY)
    assert set(res.terms) == {"yloss", "distance", "samples_l1", "set_size", "total"}
    generic = cfx.generate(G.Generic(cost=0.1), conformal, factuals, 1, key=KEY)

    def dist(cf):
        return np.mean(np.abs(np.asarray(cf)[:, None, :] - np.asarray(samples[1])[None]).sum(-1))

    assert dist(res.counterfactuals[:, 0]) < dist(generic.counterfactuals[:, 0])
    # new samples (same shape) reuse the compiled search
    before = compile_counts.search()
    cfx.generate(gen.replace(samples=samples + 0.1), conformal, factuals, 1, key=KEY)
    assert compile_counts.search() == before


def test_eccco_l1_draws_its_own_samples_and_checks_them(conformal, moons_split, factuals, samples):
    train, _ = moons_split
    gen = G.ECCCoL1(sampling_chains=10, sampling_steps=50, sampling_keep=5).fit(conformal, train, key=KEY)
    # exactly the model's conditional samples for this key (the settings of the fixture)
    np.testing.assert_array_equal(np.asarray(gen.samples), np.asarray(samples))
    before = compile_counts.search()
    with pytest.raises(ValueError, match="ECCCoL1.samples is missing"):
        cfx.generate(G.ECCCoL1(q_hat=0.5), conformal, factuals, 1, key=KEY)
    with pytest.raises(ValueError, match="3 classes"):
        cfx.generate(gen.replace(samples=jnp.zeros((3, 2, 2))), conformal, factuals, 1, key=KEY)
    assert compile_counts.search() == before
    assert {"eccco_plus", "eccco_l1"} <= set(G.REGISTRY)

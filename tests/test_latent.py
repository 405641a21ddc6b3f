"""VAEs trained with the one train step (ELBO loss), and latent-space search: REVISE, CLUE."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import compile_counts

import cfx
from cfx.generators.latent import CLUE, REVISE
from cfx.models.vae import fit_vae

KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def vae(moons_split):
    train, _ = moons_split
    # β = 0.1: a sharper decoder than the ELBO's default β = 1 on 2-D data (see the first test)
    return fit_vae(train, latent_dim=2, epochs=60, learning_rate=1e-2, beta=0.1, seed=0)


def test_the_vae_reconstructs_its_data(moons_split, vae):
    train, test = moons_split
    error = np.mean(np.sum((np.asarray(vae.decode(vae.encode(test.X))) - test.X) ** 2, -1))
    assert error < 0.05 * np.sum(np.var(train.X, 0))  # far better than predicting the mean
    # the plain ELBO (β = 1, unit-variance likelihood) trades reconstruction for a small KL
    plain = fit_vae(train, latent_dim=2, epochs=60, learning_rate=1e-2, seed=0)
    plain_error = np.mean(np.sum((np.asarray(plain.decode(plain.encode(test.X))) - test.X) ** 2, -1))
    assert error < plain_error < np.sum(np.var(train.X, 0))
    assert vae.encode(test.X).shape == (len(test), 2)
    # warm start from a VAE of the same architecture; another architecture is refused
    again = fit_vae(train, latent_dim=2, epochs=1, seed=1, init=vae)
    assert jax.tree_util.tree_structure(again.params) == jax.tree_util.tree_structure(vae.params)
    with pytest.raises(ValueError, match="same architecture"):
        fit_vae(train, latent_dim=3, epochs=1, init=vae)


def test_revise_searches_the_latent_space_and_restores_immutable_features(moons_split, moons_mlp, vae):
    train, test = moons_split
    x = test.X[np.asarray(moons_mlp.predict(test.X)) == 0][:12]
    gen = REVISE(vae=vae, learning_rate=0.05)
    res = cfx.generate(
        gen, moons_mlp, x, 1, key=KEY, max_steps=200, constraints=cfx.Constraints(mutability=["none", "both"])
    )
    cf = np.asarray(res.counterfactuals[:, 0])
    np.testing.assert_array_equal(cf[:, 0], x[:, 0])
    assert float(res.converged.mean()) >= 0.5
    # a VAE refitted on new data (a retraining round) reuses the compiled search
    refit = gen.fit(moons_mlp, train.subset(np.arange(200)), key=KEY).replace(learning_rate=0.05)
    before = compile_counts.search()
    cfx.generate(
        refit, moons_mlp, x, 1, key=KEY, max_steps=200, constraints=cfx.Constraints(mutability=["none", "both"])
    )
    assert compile_counts.search() == before


def test_latent_search_without_a_fitted_vae_or_of_the_wrong_width_is_refused(moons_mlp, vae):
    before = compile_counts.search()
    with pytest.raises(ValueError, match="latent search needs a fitted VAE"):
        cfx.generate(REVISE(), moons_mlp, np.zeros((2, 2), np.float32), 1, key=KEY)
    wide = cfx.Classifier(lambda p, x: x @ p, jnp.ones((3, 2)), n_features=3)
    with pytest.raises(ValueError, match="decodes 2 features; the classifier expects 3"):
        cfx.generate(REVISE(vae=vae), wide, np.zeros((2, 3), np.float32), 1, key=KEY)
    assert compile_counts.search() == before


def test_clue_lowers_the_predictive_entropy_without_a_target(moons_split, moons_mlp, vae):
    _, test = moons_split
    probs = np.asarray(moons_mlp.probs(test.X))
    x = test.X[np.argsort(np.abs(probs[:, 1] - 0.5))[:8]]  # the most uncertain test points
    res = cfx.generate(CLUE(vae=vae, cost=0.01, learning_rate=0.05), moons_mlp, x, None, key=KEY, max_steps=100)
    entropy = lambda p: -np.sum(p * np.log(np.clip(p, 1e-12, 1)), -1)
    before = entropy(np.asarray(moons_mlp.probs(x)))
    after = entropy(np.asarray(moons_mlp.probs(res.counterfactuals[:, 0])))
    assert np.all(np.asarray(res.target) == -1) and after.mean() < 0.5 * before.mean()

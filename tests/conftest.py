"""Shared, session-scoped fixtures for the whole suite, and the ``--runslow`` switch.

Trained models are built once per session and shared: compilation dominates test time
on CPU, so tests should reuse these shapes (moons: 480 train / 120 test rows, d = 2).

Fixtures:
  moons_split        (train, test) Datasets: make_moons(600, noise=0.1, random_state=0),
                     split 80/20 stratified with seed 0 (480 / 120 rows, not standardised).
  moons_mlp          Classifier: flax MLP (32, 32) relu trained 60 epochs on moons train (seed 0).
  moons_ensemble     Classifier: deep ensemble of 5 MLPs (32, 32), 60 epochs (seed 0);
                     ``moons_ensemble.apply_fn.member_logits(params, x)`` -> (5, n, 2).
  linear_classifier  Classifier: plain JAX (no flax) linear model on 2 features with fixed
                     weights: logits = x @ W + b with f_1 − f_0 = x_0 + x_1 − 1, i.e.
                     p(y=1|x) = sigmoid(x_0 + x_1 − 1); decision boundary x_0 + x_1 = 1.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import make_moons

from cfx.classifier import Classifier
from cfx.data.dataset import Dataset, FeatureSchema


# --- --runslow ------------------------------------------------------------------------


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked @pytest.mark.slow")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long reproduction runs, skipped unless --runslow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: pass --runslow to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


# --- data and models ------------------------------------------------------------------


@pytest.fixture(scope="session")
def moons_split():
    """(train, test): seeded moons, 600 points, noise 0.1, 80/20 split."""
    X, y = make_moons(n_samples=600, noise=0.1, random_state=0)
    data = Dataset(X.astype(np.float32), y.astype(np.int32), FeatureSchema.default(2), name="moons")
    return data.split(test_size=0.2, seed=0)


@pytest.fixture(scope="session")
def moons_mlp(moons_split):
    """A flax MLP (32, 32) trained on moons (test accuracy > 0.95)."""
    from cfx.models import fit

    train, _ = moons_split
    return fit(train, "mlp", widths=(32, 32), epochs=60, seed=0)


@pytest.fixture(scope="session")
def moons_ensemble(moons_split):
    """A deep ensemble of 5 MLPs (32, 32) trained on moons; probabilities averaged."""
    from cfx.models import fit

    train, _ = moons_split
    return fit(train, "ensemble", widths=(32, 32), epochs=60, n_members=5, seed=0)


def linear_logits(params, x):
    """Plain-JAX linear model: logits = x @ W + b, x (n, d) -> (n, C)."""
    return x @ params["W"] + params["b"]


@pytest.fixture(scope="session")
def linear_classifier():
    """Fixed-weight linear Classifier on 2 features: p(y=1|x) = sigmoid(x_0 + x_1 − 1)."""
    params = {
        "W": jnp.array([[-0.5, 0.5], [-0.5, 0.5]], jnp.float32),
        "b": jnp.array([0.5, -0.5], jnp.float32),
    }
    return Classifier(linear_logits, params, n_features=2)

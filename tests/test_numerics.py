"""Numerical robustness: a diverging training stops naming the epoch (every model kind), and a
model without a gradient leaves its counterfactuals unconverged with a reason."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cfx
from cfx import generators as G
from cfx.data import Dataset, FeatureSchema


@pytest.mark.parametrize("model", ["mlp", "linear", "ensemble", "jem"])
def test_a_diverging_training_stops_with_the_epoch(model):
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(64, 2)) * 1e3).astype(np.float32)
    data = Dataset(X, (X[:, 0] > 0).astype(np.int32), FeatureSchema.default(2))
    with pytest.raises(FloatingPointError, match=rf"fit {model}: the training .*non-finite at epoch \d+"):
        cfx.models.fit(data, model=model, epochs=4, learning_rate=1e36, widths=(8,), n_members=2, batch_size=32)


def test_a_model_without_gradient_gives_unconverged_rows_not_a_silent_copy():
    x = np.random.default_rng(0).normal(size=(3, 2)).astype(np.float32)
    flat = cfx.Classifier(lambda p, x: jnp.zeros(x.shape[:-1] + (2,)) + p, jnp.array([1.0, 0.0]), n_features=2)
    for gen, k in [(G.Generic(), 1), (G.Greedy(), 1), (G.DiCE(), 2)]:
        res = cfx.generate(gen, flat, x, 1, key=jax.random.key(0), max_steps=20, num_counterfactuals=k)
        assert not bool(np.asarray(res.converged).any())
        assert set(np.asarray(res.outcome).ravel()) == {cfx.OUTCOMES.index("max_steps")}, type(gen).__name__

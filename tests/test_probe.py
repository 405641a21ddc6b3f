"""Probe: an invalidation-rate hinge with a real gradient, and its own convergence condition."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.stats import norm

import cfx
from cfx.generators.probe import Probe, invalidation_rate

KEY = jax.random.key(0)


def test_invalidation_rate_matches_the_closed_form_of_a_linear_model(linear_classifier):
    # f_1 − f_0 = x0 + x1 − 1, so ‖∇f‖ = √2 and IR = 1 − Φ(f / (σ √2))
    x = jnp.array([0.6, 0.5])
    ir = invalidation_rate(linear_classifier, x, 1, 0.01)
    np.testing.assert_allclose(ir, 1 - norm.cdf(0.1 / (0.1 * np.sqrt(2))), rtol=1e-5)
    grad = jax.grad(lambda p: invalidation_rate(linear_classifier, p, 1, 0.01))(x)
    assert np.all(np.asarray(grad) < 0)  # moving deeper into the class lowers IR: a real gradient


def test_probe_counterfactuals_are_robust_to_noise(linear_classifier):
    x = np.random.default_rng(0).uniform(-1.5, 0.0, size=(6, 2)).astype(np.float32)
    probe = cfx.generate(Probe(), linear_classifier, x, 1, key=KEY, max_steps=300)
    plain = cfx.generate(cfx.generators.Generic(), linear_classifier, x, 1, key=KEY)
    assert bool(probe.converged.all())
    rates = jax.vmap(lambda p: invalidation_rate(linear_classifier, p, 1, 0.01))(probe.counterfactuals[:, 0])
    assert np.all(np.asarray(rates) <= 0.1 + 1e-6)
    plain_rates = jax.vmap(lambda p: invalidation_rate(linear_classifier, p, 1, 0.01))(plain.counterfactuals[:, 0])
    assert np.all(np.asarray(plain_rates) > 0.1)  # Generic stops right at the boundary
    # empirically: few of 2000 noisy copies of a Probe counterfactual fall back
    noise = 0.1 * jax.random.normal(KEY, (2000, 2))
    flipped = np.mean(np.asarray(linear_classifier.predict(probe.counterfactuals[0, 0] + noise)) != 1)
    assert flipped <= 0.1 + 0.03

"""SGLD samplers, the replay buffer and class-conditional samples (cfx.sampling)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import compile_counts
from cfx import sampling
from cfx.classifier import Classifier

TARGET = jnp.array([1.0, -1.0])


def quadratic(x, c):
    return jnp.sum((x - c) ** 2, axis=-1)


def nan_beyond_half(x):
    # Finite below x_0 = 0.5, NaN above: chains descending towards (1, 1) hit it.
    return jnp.where(x[:, 0] > 0.5, jnp.nan, 0.0) + jnp.sum((x - 1.0) ** 2, axis=-1)


def linear_classifier():
    w = jnp.array([[-1.0, 1.0], [-1.0, 1.0]])
    return Classifier(lambda p, x: x @ p, w, n_features=2)


def test_improper_sgld_lowers_energy_respects_bounds_and_is_seeded():
    x0 = jax.random.uniform(jax.random.key(0), (16, 2), minval=-1.5, maxval=1.5)
    lo, hi = jnp.array([-3.0, -0.5]), jnp.array([3.0, 3.0])
    x, info = sampling.sgld(quadratic, x0, jax.random.key(1), steps=300, lower=lo, upper=hi, args=(TARGET,))
    assert jnp.mean(info.energy) < jnp.mean(quadratic(x0, TARGET))
    assert bool(jnp.all((x >= lo) & (x <= hi)))
    np.testing.assert_allclose(x[:, 1], -0.5, atol=0.05)  # pinned at the bound nearest the minimum
    x2, _ = sampling.sgld(quadratic, x0, jax.random.key(1), steps=300, lower=lo, upper=hi, args=(TARGET,))
    np.testing.assert_array_equal(np.asarray(x), np.asarray(x2))
    assert float(info.reset_share) == 0.0
    # the single steps: improper moves at most grad_clip + noise; jem follows the gradient
    step = sampling.improper_sgld_step(quadratic, x0, jax.random.key(2), noise_scale=0.0, args=(TARGET,))
    expected = np.minimum(np.abs(2.0 * np.asarray(x0 - TARGET)), 0.01)
    np.testing.assert_allclose(np.abs(np.asarray(step - x0)), expected, atol=1e-6)
    jem = sampling.jem_sgld_step(quadratic, x0, jax.random.key(2), step_size=0.5, noise_scale=0.0, args=(TARGET,))
    np.testing.assert_allclose(jem, jnp.broadcast_to(TARGET, x0.shape), atol=1e-6)  # x − ½·2(x − c) = c


def test_non_finite_chains_are_reset_and_reported():
    x0 = jnp.concatenate([jnp.zeros((4, 2)), jnp.full((4, 2), -10.0)])
    x0 = x0.at[7, 1].set(jnp.nan)  # a NaN start is sanitised too
    x, info = sampling.sgld(nan_beyond_half, x0, jax.random.key(0), steps=150)
    assert bool(jnp.all(jnp.isfinite(x))) and not bool(jnp.any(jnp.isnan(info.energy)))
    assert float(info.reset_share) == 0.5
    assert bool(jnp.all(info.resets[:4] > 0)) and bool(jnp.all(info.resets[4:] == 0))
    assert bool(jnp.all(x[:4, 0] <= 0.5))


def test_replay_buffer_capacity_reinit_and_update():
    lo, hi = sampling.bounds(np.random.default_rng(0).normal(size=(200, 3)))
    buf = sampling.replay_buffer(lo, hi, key=jax.random.key(0), n_classes=3, capacity=100)
    assert buf.x.shape == (99, 3) and buf.per_class == 33 and buf.n_classes == 3
    assert bool(jnp.all((buf.x >= lo) & (buf.x <= hi)))
    np.testing.assert_array_equal(np.bincount(np.asarray(buf.y)), [33, 33, 33])
    # re-initialisation share: draws that differ from their slot
    marked = buf.replace(x=jnp.full_like(buf.x, 1e3))
    x0, idx = sampling.sample(marked, jax.random.key(1), 20_000)
    share = float(jnp.mean(x0[:, 0] < 1e3))
    assert abs(share - 0.05) < 0.01
    # labelled draws stay within their class's slots
    y = jnp.array([0, 1, 2, 2, 1])
    _, idx = sampling.sample(buf, jax.random.key(2), 5, y)
    np.testing.assert_array_equal(np.asarray(buf.y[idx]), np.asarray(y))
    new = sampling.update(buf, idx, jnp.zeros((5, 3)))
    assert bool(jnp.all(new.x[idx] == 0.0))
    untouched = np.setdiff1d(np.arange(99), np.asarray(idx))
    np.testing.assert_array_equal(np.asarray(new.x[untouched]), np.asarray(buf.x[untouched]))


def test_conditional_samples_shape_energy_and_single_compilation():
    clf = linear_classifier()
    X = np.random.default_rng(0).normal(size=(100, 2)).astype(np.float32)
    before = compile_counts.traces("_conditional_samples")
    S = sampling.conditional_samples(clf, X, key=jax.random.key(0), n_chains=10, steps=300, keep=4)
    assert S.shape == (2, 4, 2) and bool(jnp.all(jnp.isfinite(S)))
    lo, hi = sampling.bounds(X)
    rand = jax.random.uniform(jax.random.key(1), (50, 2), minval=lo, maxval=hi)
    for c in range(2):
        e = lambda z: -clf.logits(z)[:, c]
        assert float(jnp.mean(e(S[c]))) < float(jnp.mean(e(rand)))
    S2 = sampling.conditional_samples(
        clf.replace(2.0 * clf.params), X, key=jax.random.key(0), n_chains=10, steps=300, keep=4
    )
    assert S2.shape == S.shape
    assert compile_counts.traces("_conditional_samples") - before == 1
    S3 = sampling.conditional_samples(clf, X, key=jax.random.key(0), n_chains=10, steps=300, keep=4)
    np.testing.assert_array_equal(np.asarray(S), np.asarray(S3))

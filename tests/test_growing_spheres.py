"""Growing Spheres: gradient-free, batched, early exit per row, sparse."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import compile_counts

import cfx
from cfx.generators.growing_spheres import GrowingSpheres

KEY = jax.random.key(0)


def linear(w, b):
    """p(1|x) = sigmoid(w·x + b) as a single-logit model."""
    return cfx.Classifier(
        lambda p, x: x @ p["w"][:, None] + p["b"], {"w": jnp.asarray(w), "b": jnp.asarray(b)}, n_features=len(w)
    )


def test_finds_valid_counterfactuals_near_the_boundary_and_stops_early(linear_classifier):
    x = np.random.default_rng(0).uniform(-1.5, 0.0, size=(8, 2)).astype(np.float32)
    res = cfx.generate(GrowingSpheres(n_samples=400), linear_classifier, x, 1, key=KEY, max_steps=50)
    assert bool(res.converged.all())
    np.testing.assert_array_equal(linear_classifier.predict(res.counterfactuals[:, 0]), 1)
    # the boundary x0 + x1 = 1 is (1 - x0 - x1)/√2 away; the first shell that crosses it is found
    to_boundary = (1 - x.sum(1)) / np.sqrt(2)
    dist = np.linalg.norm(np.asarray(res.counterfactuals[:, 0]) - x, axis=-1)
    assert np.all(dist >= to_boundary - 1e-5) and np.all(dist <= to_boundary + 0.2 + 1e-5)
    # rows stop when found: the shell count follows the distance
    np.testing.assert_array_equal(np.asarray(res.steps[:, 0]), np.floor(to_boundary / 0.2).astype(int) + 1)


def test_sparsify_reverts_the_features_the_model_ignores():
    clf = linear(np.array([3.0, 0.0, 0.0], np.float32), np.float32(-1.0))  # only x0 matters
    x = np.zeros((5, 3), np.float32)
    res = cfx.generate(GrowingSpheres(), clf, x, 1, key=KEY, max_steps=30)
    cf = np.asarray(res.counterfactuals[:, 0])
    assert bool(res.converged.all())
    np.testing.assert_array_equal(cf[:, 1:], 0.0)  # reverted: changing them never helped
    assert np.all(cf[:, 0] > 1 / 3)


def test_constraints_and_no_recompilation_for_a_new_step_size(linear_classifier):
    x = np.full((4, 2), -0.5, np.float32)
    res = cfx.generate(
        GrowingSpheres(), linear_classifier, x, 1, key=KEY, constraints=cfx.Constraints(mutability=["none", "increase"])
    )
    cf = np.asarray(res.counterfactuals[:, 0])
    np.testing.assert_array_equal(cf[:, 0], x[:, 0])
    assert bool(res.converged.all()) and np.all(cf[:, 1] >= x[:, 1])
    before = compile_counts.search()
    cfx.generate(
        GrowingSpheres(step_size=0.1),
        linear_classifier,
        x,
        1,
        key=KEY,
        constraints=cfx.Constraints(mutability=["none", "increase"]),
    )
    assert compile_counts.search() == before


def test_unreachable_target_runs_out_of_steps():
    clf = linear(np.array([1.0, 1.0], np.float32), np.float32(-1.0))
    res = cfx.generate(
        GrowingSpheres(n_samples=50),
        clf,
        np.zeros((2, 2), np.float32),
        1,
        key=KEY,
        max_steps=10,
        constraints=cfx.Constraints(lower=-1.0, upper=0.2),
    )
    assert not bool(res.converged.any()) and int(res.steps.min()) == 10
    with pytest.raises(ValueError, match="step_size must be finite and > 0"):
        cfx.generate(GrowingSpheres(step_size=0.0), clf, np.zeros((2, 2), np.float32), 1, key=KEY)

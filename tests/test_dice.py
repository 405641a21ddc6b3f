"""DiCE with dice-ml's distance: inverse-MAD feature weights (closed forms) and explain's defaults."""

from __future__ import annotations

import importlib

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import cfx
from cfx.generators.dice import DiCE, dice_ml_feature_weights


def test_dice_ml_feature_weights_closed_form():
    frame = pd.DataFrame(
        {
            "income": [0.0, 10.0, 20.0, 30.0, 100.0],
            "debt": [0.0, 0.0, 0.0, 0.0, 50.0],
            "city": ["a", "b", "c", "a", "b"],
            "own": ["y", "n", "y", "n", "y"],
            "ok": [0, 1, 0, 1, 1],
        }
    )
    data = cfx.data.from_frame(frame, "ok", categorical=["city"])
    train = data
    w, width = dice_ml_feature_weights(train)
    scale = np.asarray(train.encoder.scale, np.float64)
    names = list(train.encoder.names)
    inc = frame["income"]
    mad = np.median(np.abs(inc - inc.median())) / 100.0  # MAD on dice-ml's [0, 1] scale
    np.testing.assert_allclose(
        w[names.index("income")], round(1 / mad, 2) * scale[names.index("income")] / 100.0, rtol=1e-6
    )
    np.testing.assert_allclose(w[names.index("debt")], scale[names.index("debt")] / 50.0, rtol=1e-6)  # MAD 0 -> 1
    city = [i for i, n in enumerate(names) if n.startswith("city")]
    np.testing.assert_allclose(w[city], scale[city], rtol=1e-6)
    own = [i for i, n in enumerate(names) if n.startswith("own")]
    np.testing.assert_allclose(w[own], 2 * scale[own], rtol=1e-6)
    assert width == 2 + 3 + 2  # income, debt; city one-hot; own as two columns


def test_weighted_dice_terms_closed_form():
    w = jnp.asarray([0.5, 2.0, 1.0])
    gen = DiCE(feature_weights=w, distance="l1", diversity_distance="l1", cost=0.3)
    proximity, diversity = gen.penalties()
    x = jnp.asarray([0.0, 1.0, -1.0])
    xs = jnp.asarray([[1.0, 1.0, 0.0], [0.0, 3.0, -1.0], [2.0, 0.0, 1.0]])
    np.testing.assert_allclose(proximity.fn(xs[0], x, None), 0.5 * 1 + 1.0 * 1, rtol=1e-6)
    dist = np.abs((np.asarray(xs)[:, None] - np.asarray(xs)[None]) * np.asarray(w)).sum(-1)
    kernel = 1 / (1 + dist) + 1e-4 * np.eye(3)
    np.testing.assert_allclose(diversity.fn(xs, x, None), -np.linalg.det(kernel), rtol=1e-4)
    with pytest.raises(ValueError, match="feature_weights weigh L1 distances"):
        DiCE(feature_weights=w).validate(3, 3, 2)


def test_explain_dice_ml_builds_dice_as_dice_ml_runs_it():
    E = importlib.import_module("cfx.explain")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "income": rng.normal(50, 10, 60).round(1),
            "age": rng.integers(20, 60, 60),
            "own": rng.choice(["y", "n"], 60),
            "ok": rng.integers(0, 2, 60),
        }
    )
    train, _ = cfx.data.train_test(cfx.data.from_frame(frame, "ok"), seed=0)
    clf = cfx.Classifier(lambda p, x: x @ p, jnp.asarray([[0.0, 1.0], [0.0, 0.5], [0.0, 0.0]]), n_features=3)
    gen = E._generator("dice-ml", {}, train, clf)
    w, width = dice_ml_feature_weights(train)
    assert (gen.yloss, gen.k_terms, gen.diversity_distance, gen.space) == ("hinge", "mean", "l1", "standardized")
    np.testing.assert_allclose(gen.cost, 0.5 / width)
    np.testing.assert_allclose(np.asarray(gen.feature_weights), w)
    lo, hi = np.asarray(train.schema.lower), np.asarray(train.schema.upper)
    np.testing.assert_allclose(np.asarray(gen.space_scale), hi - lo, rtol=1e-6)  # min-max space
    same = E._generator("dice", {}, train, clf)  # explain's "dice" is dice-ml's DiCE
    assert (same.yloss, same.k_terms, same.space) == (gen.yloss, gen.k_terms, gen.space)
    np.testing.assert_allclose(np.asarray(same.feature_weights), w)
    assert E._generator("dice-cejl", {}, train, clf).yloss == "cross_entropy"  # CE.jl's loss, as the registry's DiCE
    assert E._generator("dice-ml", {"cost": 0.2}, train, clf).feature_weights is None  # a cost of your own: unweighted

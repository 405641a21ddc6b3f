"""Latent probes: the ridge CV equals a numpy computation of the same folds, activations are the
layer's, the controls behave as controls, a layer that does not exist lists the layers."""

import numpy as np
import pytest

import cfx
from cfx import probing


def _numpy_ridge_cv(Z, y, folds, alpha, seed):
    assign = np.random.default_rng(seed).permutation(len(Z)) % folds
    scores = []
    for f in range(folds):
        tr, te = assign != f, assign == f
        mu, sd = Z[tr].mean(0), Z[tr].std(0)
        sd = np.where(sd > 1e-6, sd, 1.0)
        A, B = (Z[tr] - mu) / sd, (Z[te] - mu) / sd
        W = np.linalg.solve(A.T @ A + alpha * np.eye(Z.shape[1]), A.T @ (y[tr] - y[tr].mean()))
        pred = B @ W + y[tr].mean()
        scores.append(1 - np.sum((y[te] - pred) ** 2) / np.sum((y[te] - y[te].mean()) ** 2))
    return np.array(scores)


def test_ridge_cv_equals_the_closed_form_on_the_same_folds():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(120, 6)).astype(np.float32)
    y = Z @ rng.normal(size=6) + 0.5 * rng.normal(size=120)
    out = probing.ridge_cv(Z, y, folds=4, alphas=(3.0,), seed=7)
    np.testing.assert_allclose(out["per_fold"], _numpy_ridge_cv(Z.astype(np.float64), y, 4, 3.0, 7), atol=1e-4)
    assert out["alpha"] == 3.0 and out["score"] == pytest.approx(out["per_fold"].mean())
    # exact linear target: R² ≈ 1; shuffled: about 0 or below; a sign of one feature: a ridge classifier gets most
    assert probing.ridge_cv(Z, Z @ np.arange(6.0))["score"] > 0.999
    assert probing.ridge_cv(Z, rng.permutation(y))["score"] < 0.1
    assert probing.ridge_cv(Z, (Z[:, 0] > 0).astype(int), task="classification")["score"] > 0.85


def test_activations_are_the_layers_outputs(moons_split, moons_mlp):
    _, test = moons_split
    p = moons_mlp.params["params"]
    h0 = np.maximum(test.X @ np.asarray(p["hidden_0"]["kernel"]) + np.asarray(p["hidden_0"]["bias"]), 0)
    np.testing.assert_allclose(probing.activations(moons_mlp, test.X, "hidden_0"), h0, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(probing.activations(moons_mlp, test.X, "logits"), moons_mlp.logits(test.X), atol=1e-5)
    assert probing.layers(moons_mlp) == ["input", "hidden_0", "hidden_1", "logits"]


def test_probe_and_controls_side_by_side(moons_split, moons_mlp):
    """A variable the model never saw (the squared radius): the trained layer decodes it, the
    linear random projection of the same width cannot decode the radius, an untrained
    network of the same architecture decodes much of it as well (the paper's point), shuffled
    targets are at chance."""
    _, test = moons_split
    radius = np.sum(test.X**2, axis=1)
    table = probing.probe(moons_mlp, test.X, radius, layer="hidden_1")
    assert list(table.index) == [
        "trained layer",
        "random projection",
        "untrained model",
        "shuffled targets",
        "raw inputs",
    ]
    assert (table["width"].tolist() == [32, 32, 32, 32, 2]) and table.attrs["metric"] == "R2"
    s = table["score"]
    assert s["trained layer"] > 0.8 and s["untrained model"] > 0.8
    assert s["random projection"] < 0.5 and s["shuffled targets"] < 0.1


def test_bad_input(moons_split, moons_mlp, linear_classifier):
    _, test = moons_split
    with pytest.raises(
        ValueError,
        match=r"layer 'hidden_7' does not exist; the model's layers are "
        r"\['input', 'hidden_0', 'hidden_1', 'logits'\]",
    ):
        probing.probe(moons_mlp, test.X, test.y, layer="hidden_7")
    with pytest.raises(ValueError, match="apply_fn must be a cfx.models.ModuleApply"):
        probing.activations(linear_classifier, test.X, "input")
    with pytest.raises(ValueError, match="task must be one of"):
        probing.ridge_cv(test.X, test.y, task="ordinal")
    with pytest.raises(ValueError, match="folds must be an int"):
        probing.ridge_cv(test.X, test.y, folds=1)
    with pytest.raises(ValueError, match="same n"):
        probing.ridge_cv(test.X, test.y[:3])
    assert cfx.probing is probing

"""Validity of cfx.explain (issue 23): restarts from valid data where a projected gradient search
stalls on a face of the constraints' box, and a status (and reason) per counterfactual."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import cfx
import cfx.data as D
from cfx.restarts import bank, repair, restart


def stalling(raw_offset=0.0, raw_scale=1.0):
    """p(1 | a, b) = σ(−5a + 10·relu(b − 1) − 2) on raw units: at a factual with b < 1 the gradient
    only asks for a smaller a; at a's lower bound 0 the search stalls with p = σ(−2) < 0.5, while
    every point with b > 1.2 is valid."""
    off, sc = jnp.asarray(raw_offset, jnp.float32), jnp.asarray(raw_scale, jnp.float32)

    def apply(params, z):
        raw = off + sc * z
        logit = -5.0 * raw[..., 0] + 10.0 * jax.nn.relu(raw[..., 1] - 1.0) - 2.0
        return jnp.stack([jnp.zeros_like(logit), logit], axis=-1) * params["t"]

    return cfx.Classifier(apply, {"t": jnp.float32(1.0)}, n_features=2)


def test_restart_replaces_a_stalled_search_by_a_nearby_valid_point():
    clf = stalling()
    x = np.array([[0.5, 0.5], [1.0, 0.2]], np.float32)
    box = cfx.Constraints(lower=0.0, upper=2.0)
    res = cfx.generate(cfx.generators.Generic(), clf, x, 1, key=jax.random.key(0), constraints=box, max_steps=300)
    assert (np.asarray(res.outcome) != 0).all() and (np.asarray(res.target_probs) < 0.5).all()  # stalled at a = 0
    grid = np.stack(np.meshgrid(np.linspace(0, 2, 21), np.linspace(0, 2, 21)), -1).reshape(-1, 2).astype(np.float32)
    new, restarted = restart(clf, x, res.counterfactuals, res.target, np.ones((2, 1), bool), grid, box, tau=0.5)
    assert restarted.all()
    p = np.asarray(clf.probs(new[:, 0]))[:, 1]
    assert (p >= 0.5).all() and (new >= 0).all() and (new <= 2).all()
    nearest = np.min(np.abs(grid[np.asarray(clf.probs(grid))[:, 1] >= 0.5][:, None] - x).sum(-1), axis=0)
    assert (np.abs(new[:, 0] - x).sum(-1) <= nearest + 1e-6).all()  # the bisection only moves closer
    # b immutable: no training row stays valid, so nothing is restarted
    frozen = cfx.Constraints(lower=0.0, upper=2.0, mutability=["both", "none"])
    _, restarted = restart(clf, x, res.counterfactuals, res.target, np.ones((2, 1), bool), grid, frozen, tau=0.5)
    assert not restarted.any()
    # the same for a generate result: outcome and p(target) follow the new point
    fixed, restarted = repair(res, clf, grid, constraints=box)
    assert restarted.all() and (np.asarray(fixed.outcome) == 0).all() and (np.asarray(fixed.target_probs) >= 0.5).all()
    np.testing.assert_array_equal(fixed.counterfactuals, new)


def test_bank_keeps_every_predicted_class():
    clf = stalling()
    X = np.random.default_rng(0).uniform(0, 2, (500, 2)).astype(np.float32)
    B = bank(clf, X, per_class=20)
    assert sorted(np.unique(np.asarray(clf.predict(B)), return_counts=True)[1]) == [20, 20]


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame(
        {"a": rng.uniform(0, 2, n).round(3), "b": rng.uniform(0, 2, n).round(3), "y": rng.integers(0, 2, n)}
    )
    train, _ = D.train_test(D.from_frame(df, "y"), seed=0)
    s = train.schema
    clf = stalling(np.asarray(s.raw_offset), np.asarray(s.raw_scale))
    rows = pd.DataFrame({"a": [0.5, 1.0, 0.1], "b": [0.5, 0.2, 1.5]})  # the last is already valid
    return train, clf, rows


def test_explain_reports_a_status_per_counterfactual(problem):
    train, clf, rows = problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = cfx.explain(clf, rows, data=train, target=1, max_steps=200)
        before = cfx.explain(clf, rows, data=train, target=1, max_steps=200, restarts=False)
    assert out["valid"].all()
    assert list(out["status"]) == ["restarted", "restarted", "found"]
    assert (out["reason"] == "").all()
    # returned as valid means valid when the raw row is scored again
    again = np.asarray(clf.probs(train.encoder.encode(out[["a", "b"]])))[:, 1]
    assert (again >= 0.5).all()
    assert list(before["status"]) == ["not_found", "not_found", "found"]
    assert before["reason"].iloc[0].startswith("the search ended max_steps at p(target) = ")


@pytest.mark.filterwarnings("ignore:.*already predicted")
def test_explain_says_when_constraints_leave_nothing(problem):
    train, clf, rows = problem
    with pytest.warns(UserWarning, match="2 of 3 rows have no valid counterfactual"):
        out = cfx.explain(clf, rows, data=train, target=1, max_steps=200, immutable=["b"])
    assert list(out["status"]) == ["not_found", "not_found", "found"]
    assert "no training row stays valid" in out["reason"].iloc[0]


@pytest.mark.filterwarnings("ignore:.*valid counterfactual")
def test_explain_says_when_the_model_never_predicts_the_target(problem):
    train, _, rows = problem
    never = cfx.Classifier(
        lambda p, z: jnp.stack([z[..., 0] * 0 + p["b"], z[..., 0] * 0 - p["b"]], -1),
        {"b": jnp.float32(3.0)},
        n_features=2,
    )
    out = cfx.explain(never, rows.head(1), data=train, target=1, max_steps=20)
    assert list(out["status"]) == ["not_found"] and "for none of the training rows" in out["reason"].iloc[0]

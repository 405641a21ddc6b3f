"""Structural causal models (cfx.causal) and causal recourse (MINT) against closed forms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import compile_counts

import cfx
from cfx.causal import fit_linear_scm, fit_mlp_scm, linear_scm, resolve_parents
from cfx.data.dataset import Dataset, FeatureSchema
from cfx.generators import MINT, Generic

KEY = jax.random.key(0)
# x0 = u0,  x1 = 2·x0 + 0.5 + u1
SCM2 = linear_scm([[], [0]], [[], [2.0]], [0.0, 0.5])
W, B = np.array([1.0, 0.5], np.float32), -1.0  # logit = x0 + 0.5·x1 − 1


def linear_classifier(w=W, b=B):
    return cfx.Classifier(
        lambda p, x: x @ p["w"][:, None] + p["b"], {"w": jnp.asarray(w), "b": jnp.asarray([b])}, n_features=len(w)
    )


def test_propagation_and_abduction_match_the_closed_form():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 2)).astype(np.float32)
    delta = rng.normal(size=(5, 2)).astype(np.float32)
    u = np.asarray(SCM2.abduct(x))
    np.testing.assert_allclose(u[:, 1], x[:, 1] - 2 * x[:, 0] - 0.5, atol=1e-6)
    out = np.asarray(jax.jit(SCM2.intervene)(x, delta))  # additive: x1' = 2·x0' + 0.5 + u1 + δ1
    np.testing.assert_allclose(out[:, 0], x[:, 0] + delta[:, 0], atol=1e-6)
    np.testing.assert_allclose(out[:, 1], 2 * out[:, 0] + 0.5 + u[:, 1] + delta[:, 1], atol=1e-5)
    hard = np.asarray(SCM2.intervene(x, delta, acted=jnp.array([True, True])))  # do(x = x + δ): no propagation
    np.testing.assert_allclose(hard, x + delta, atol=1e-6)
    only0 = np.asarray(SCM2.intervene(x, delta, acted=jnp.array([True, False])))
    np.testing.assert_allclose(only0[:, 1] - x[:, 1], 2 * delta[:, 0], atol=1e-5)  # acting on x0 moves x1 by 2·δ0
    np.testing.assert_allclose(np.asarray(SCM2.action(x, out)), delta, atol=1e-5)  # δ read back from the point


def test_a_chain_propagates_in_topological_order_whatever_the_feature_order():
    # x2 = u2 (root), x0 = 3·x2 + u0, x1 = −x0 + u1: the order is 2, 0, 1
    scm = linear_scm({0: [2], 1: [0]}, [[3.0], [-1.0], []], n_features=3)
    assert scm.order == (2, 0, 1)
    x = jnp.zeros((1, 3))
    out = np.asarray(scm.intervene(x, jnp.array([0.0, 0.0, 1.0])))
    np.testing.assert_allclose(out, [[3.0, -3.0, 1.0]], atol=1e-6)


def test_least_squares_recovers_the_equations():
    rng = np.random.default_rng(1)
    x0 = rng.normal(size=500)
    X = np.column_stack([x0, 2 * x0 + 0.5 + 0.1 * rng.normal(size=500)]).astype(np.float32)
    scm = fit_linear_scm(X, [[], ["x0"]], feature_names=("x0", "x1"))
    assert abs(float(scm.weights[1, 0]) - 2.0) < 0.02 and abs(float(scm.intercept[1]) - 0.5) < 0.02
    assert float(scm.weights[0, 1]) == 0.0


def test_mlp_equations_fit_a_nonlinear_scm_and_propagate_through_it():
    rng = np.random.default_rng(5)
    x0 = rng.uniform(-2, 2, 400)
    X = np.column_stack([x0, 2 * np.sin(x0) + 0.05 * rng.normal(size=400)]).astype(np.float32)
    scm = fit_mlp_scm(X, [[], [0]], hidden=8, epochs=200, learning_rate=5e-2)
    linear = fit_linear_scm(X, [[], [0]])
    mse = lambda s: float(np.mean(np.asarray(s.abduct(X))[:, 1] ** 2))
    assert mse(scm) < 0.02 and mse(scm) < mse(linear) / 5, (mse(scm), mse(linear))  # noise variance 0.0025
    x, delta = X[:5], np.tile([[0.7, 0.0]], (5, 1)).astype(np.float32)
    out = np.asarray(scm.intervene(x, delta))
    np.testing.assert_allclose(np.asarray(scm.abduct(out)), np.asarray(scm.abduct(x)) + delta, atol=1e-4)
    truth = 2 * np.sin(x[:, 0] + 0.7) + (x[:, 1] - 2 * np.sin(x[:, 0]))
    assert np.max(np.abs(out[:, 1] - truth)) < 0.3
    res = cfx.generate(
        MINT(scm=scm, actions=(0,), learning_rate=0.05), linear_classifier(), x, target=1, key=KEY, max_steps=100
    )
    cf = np.asarray(res.counterfactuals)[:, 0]
    np.testing.assert_allclose(np.asarray(scm.abduct(cf))[:, 1], np.asarray(scm.abduct(x))[:, 1], atol=1e-4)


def test_mint_finds_the_closed_form_intervention_for_a_linear_classifier():
    # Only x0 is actionable: logit(x + δ0·(1, 2)) = logit(x) + δ0·(w0 + 2·w1), so the least action
    # reaching p = 0.5 is δ0* = −logit(x) / (w0 + 2·w1); gradient steps stop within one step past it.
    rng = np.random.default_rng(2)
    x = np.column_stack([rng.uniform(-1, 0, 8), rng.uniform(-1, 0.5, 8)]).astype(np.float32)
    gen = MINT(scm=SCM2, actions=(0,), cost=0.0, learning_rate=0.05)
    res = cfx.generate(gen, linear_classifier(), x, target=1, key=KEY, max_steps=500)
    cf = np.asarray(res.counterfactuals)[:, 0]
    assert np.all(np.asarray(res.outcome) == 0)  # converged
    delta = np.asarray(SCM2.action(x, cf))
    np.testing.assert_allclose(delta[:, 1], 0.0, atol=1e-5)  # nothing done to x1 ...
    np.testing.assert_allclose(cf[:, 1] - x[:, 1], 2 * (cf[:, 0] - x[:, 0]), atol=1e-5)  # ... which moved by 2·δ0
    np.testing.assert_allclose(cf, np.asarray(SCM2.intervene(x, delta)), atol=1e-5)
    best = -(x @ W + B) / (W[0] + 2 * W[1])
    assert np.all(delta[:, 0] >= best - 1e-5) and np.all(delta[:, 0] - best < 0.05), (delta[:, 0], best)
    assert float(np.max(np.abs(res.terms["action"][:, 0] - np.abs(delta[:, 0])))) < 1e-5


def test_ignoring_the_graph_is_cheaper_but_violates_the_scm():
    """The figure's case (docs/generators.md, "Causal recourse (MINT)")."""
    x = np.array([[0.0, 0.5]], np.float32)  # u1 = 0: on the SCM's line x1 = 2·x0 + 0.5
    clf = linear_classifier()
    plain = cfx.generate(Generic(cost=0.0, learning_rate=0.05), clf, x, target=1, key=KEY, max_steps=500)
    mint = cfx.generate(
        MINT(scm=SCM2, actions=(0,), cost=0.0, learning_rate=0.05), clf, x, target=1, key=KEY, max_steps=500
    )
    p, m = np.asarray(plain.counterfactuals)[0, 0], np.asarray(mint.counterfactuals)[0, 0]
    assert clf.predict(p[None])[0] == 1 and clf.predict(m[None])[0] == 1
    assert np.abs(p - x[0]).sum() < np.abs(m - x[0]).sum()  # cheaper in the input space ...
    violation = lambda point: float(np.asarray(SCM2.abduct(point[None]))[0, 1])  # u1 of the point; factual: 0
    assert abs(violation(p)) > 0.2  # ... but x1 ≠ 2·x0 + 0.5 + u1: acting on x0 alone cannot get there
    assert abs(violation(m)) < 1e-5


def test_mint_is_one_compiled_search_and_respects_constraints():
    rng = np.random.default_rng(3)
    x = (0.3 * rng.normal(size=(6, 2)) - 1.0).astype(np.float32)
    clf = linear_classifier()
    # x0 may only increase up to 0.2; the point is projected like every generator's
    constraints = cfx.Constraints(mutability=["increase", "both"], upper=[0.2, np.inf])
    gen = MINT(scm=SCM2, cost=0.1, learning_rate=0.05)
    res = cfx.generate(gen, clf, x, target=1, key=KEY, max_steps=50, constraints=constraints)
    cf = np.asarray(res.counterfactuals)[:, 0]
    assert np.all(cf[:, 0] >= x[:, 0] - 1e-6) and np.all(cf[:, 0] <= 0.2 + 1e-6)
    # a run-time immutable feature is never acted on: x0 stays, so x1 only moves by its own action
    frozen = cfx.generate(
        gen, clf, x, target=1, key=KEY, max_steps=50, constraints=cfx.Constraints(mutability=["none", "both"])
    )
    np.testing.assert_array_equal(np.asarray(frozen.counterfactuals)[:, 0, 0], x[:, 0])
    # a noisy start perturbs the action, never the factual: the point stays on the SCM
    noisy = cfx.generate(MINT(scm=SCM2, actions=(0,)).replace(start="noise"), clf, x, target=1, key=KEY, max_steps=50)
    u = np.asarray(SCM2.abduct(np.asarray(noisy.counterfactuals)[:, 0]))
    np.testing.assert_allclose(u[:, 1], np.asarray(SCM2.abduct(x))[:, 1], atol=1e-5)
    before = compile_counts.search()
    cfx.generate(
        gen.replace(scm=SCM2.replace(weights=SCM2.weights * 1.5), cost=0.2),
        clf,
        x,
        target=1,
        key=KEY,
        max_steps=50,
        constraints=constraints,
    )
    assert compile_counts.search() == before  # new SCM weights and cost: the same program


def test_registry_fit_from_parents_and_schema():
    rng = np.random.default_rng(4)
    x0 = rng.normal(size=200)
    X = np.column_stack([x0, 2 * x0 + 0.1 * rng.normal(size=200), rng.normal(size=200)]).astype(np.float32)
    schema = FeatureSchema(("a", "b", "age"), ("both", "both", "none"), (-np.inf,) * 3, (np.inf,) * 3, ())
    data = Dataset(X, (X[:, 1] > 0).astype(np.int32), schema)
    gen = cfx.generators.make("mint", data=data, parents=[[], ["a"], []])
    assert gen.actions == (0, 1) and abs(float(gen.scm.weights[1, 0]) - 2.0) < 0.05
    mapped = cfx.generators.make("mint", data=data, parents={"b": ["a"]})  # a config's mapping form
    assert mapped.scm.parents == gen.scm.parents and hash(mapped.parents) is not None
    with pytest.raises(ValueError, match="feature 'age' is immutable"):
        cfx.generators.make("mint", data=data, actions=["a", "age"])
    nonlinear = cfx.generators.make("mint", data=data, parents=[[], ["a"], []], equations="mlp", equation_epochs=20)
    assert nonlinear.scm.mlp is not None and nonlinear.scm.parents == ((), (0,), ())
    with pytest.raises(ValueError, match="equations must be 'linear' or 'mlp'"):
        MINT(equations="gp")
    plain = cfx.generators.make("mint", data=data)  # no graph: independent features
    assert float(jnp.abs(plain.scm.weights).sum()) == 0.0


def test_bad_graphs_and_actions_name_the_feature():
    with pytest.raises(ValueError, match="cycle through feature 0"):
        resolve_parents([[1], [0]])
    with pytest.raises(ValueError, match="cycle through feature 'a'"):
        resolve_parents([["a"]], feature_names=["a"])
    with pytest.raises(ValueError, match="unknown feature 'c'"):
        resolve_parents([[], ["c"]], feature_names=["a", "b"])
    with pytest.raises(ValueError, match="unknown feature 5"):
        resolve_parents([[], [5]])
    with pytest.raises(ValueError, match="parents has 2 entries for 3 features: feature 'c' has no parent list"):
        resolve_parents([[], [0]], 3, feature_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="not one of its parents"):
        linear_scm([[], []], [[0.0, 0.0], [1.0, 0.0]])
    clf3 = linear_classifier(np.ones(3, np.float32), 0.0)
    with pytest.raises(ValueError, match=r"covers 2 features; the classifier expects 3 \(feature 2 is missing"):
        cfx.generate(MINT(scm=SCM2), clf3, np.zeros((1, 3), np.float32), target=1, key=KEY)
    with pytest.raises(ValueError, match="scm is missing"):
        cfx.generate(MINT(), linear_classifier(), np.zeros((1, 2), np.float32), target=1, key=KEY)
    with pytest.raises(ValueError, match="intervention must be one of"):
        MINT(intervention="soft")


def test_scm_chain_is_drawn_from_its_scm():
    data = cfx.data.load("scm_chain", n=4000, seed=1)
    scm = cfx.causal.fit_linear_scm(data.X, [[], [0]], feature_names=["x1", "x2"])
    assert abs(float(scm.weights[1, 0]) - 1.0) < 0.05  # x2 = 1·x1 + u2
    u = np.asarray(scm.abduct(data.X))
    assert abs(float(u[:, 1].std()) - 0.5) < 0.03 and abs(float(np.corrcoef(u[:, 0], u[:, 1])[0, 1])) < 0.05
    # the label follows x1 + x2: the accepted half has the larger sum
    s = data.X.sum(1)
    assert s[data.y == 1].mean() > s[data.y == 0].mean() + 1.0

"""Property-based tests of the search over every registered generator (hypothesis).

Random problems: feature count, mutability codes (none / increase / decrease / both), bounds
that contain the factual, a one-hot group, an integer feature, targets, K, a random linear or
small MLP classifier. Every generator is fitted as it needs (a calibrated classifier for
ECCCo and its variants, a VAE for REVISE/CLUE, samples for ECCCo-L1). Properties of every
counterfactual: immutable features bit-identical, monotone directions respected, bounds held,
one-hot groups valid, integers on their grid, values finite, outcome codes consistent
(converged => p(target) >= τ; every row has one of the outcome codes; a row out of steps and
returned as the factual says ``unchanged``).

Profiles: ``CFX_HYPOTHESIS_PROFILE=ci`` (default, sized for the suite) or ``long`` (also
``CFX_PROPERTY_PROFILE``)
(``CFX_HYPOTHESIS_PROFILE=long python -m pytest -n 0 -s tests/test_properties.py``: at least
10⁵ counterfactuals). The counterfactuals checked are printed at the end of the module.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cfx
from cfx import generators as G
from cfx.data import Dataset, FeatureSchema
from cfx.models.conformal import calibrate

settings.register_profile(
    "ci", max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("long", max_examples=1600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROFILE = os.environ.get("CFX_HYPOTHESIS_PROFILE", os.environ.get("CFX_PROPERTY_PROFILE", "ci"))
N_FACTUALS = {"ci": 8, "long": 32}[PROFILE]
CODES = ("both", "increase", "decrease", "none")
CHECKED = {"counterfactuals": 0, "violations": 0}


def _mlp_apply(params, x):
    return jnp.tanh(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]


def _linear_apply(params, x):
    return x @ params["w2"] + params["b2"]


def _classifier(kind: str, d: int, seed: int) -> cfx.Classifier:
    """A random 2-class model on d features; same apply per (kind, d): new params never recompile."""
    rng = np.random.default_rng(seed)
    params = {
        "w1": rng.normal(size=(d, 8)),
        "b1": rng.normal(size=8) * 0.1,
        "w2": rng.normal(size=(8 if kind == "mlp" else d, 2)),
        "b2": rng.normal(size=2) * 0.1,
    }
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), params)
    return cfx.Classifier(_mlp_apply if kind == "mlp" else _linear_apply, params, n_features=d, n_classes=2)


@functools.cache
def _problem(d: int):
    """Training data on d features (the last two a one-hot pair when d >= 3) for fitting."""
    rng = np.random.default_rng(d)
    X = rng.uniform(-2, 2, size=(240, d)).astype(np.float32)
    if d >= 3:
        hot = rng.integers(0, 2, size=240)
        X[:, -2], X[:, -1] = hot, 1 - hot
    X[:, 0] = np.round(X[:, 0])
    y = (X[:, :2].sum(1) + 0.3 * rng.normal(size=240) > 0).astype(np.int32)
    return Dataset(X, y, FeatureSchema.default(d), name=f"random{d}")


@functools.cache
def _fitted(name: str, kind: str, d: int):
    """Registered generator ``name`` fitted on the d-feature problem (q̂ from a calibrated model)."""
    data = _problem(d)
    clf = _classifier(kind, d, seed=0)
    return G.make(name, data=data, classifier=calibrate(clf, data, alpha=0.1))


@st.composite
def problems(draw):
    d = draw(st.sampled_from([2, 3, 5]))
    n = N_FACTUALS
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(n, d)).astype(np.float32)
    x[:, 0] = np.round(x[:, 0])  # feature 0 is an integer feature
    groups = None
    if d >= 3:
        hot = rng.integers(0, 2, size=n)
        x[:, -2], x[:, -1] = hot, 1 - hot
        groups = [[d - 2, d - 1]]
    mutability = [draw(st.sampled_from(CODES)) for _ in range(d)]
    if groups:  # a one-hot group changes as a whole: both or none
        mutability[-1] = mutability[-2] = draw(st.sampled_from(["both", "none"]))
    # bounds that contain every factual: [min - a, max + b] per feature
    below, above = rng.uniform(0, 1.5, size=d), rng.uniform(0, 1.5, size=d)
    lower, upper = x.min(0) - below, x.max(0) + above
    if groups:
        lower[-2:], upper[-2:] = 0.0, 1.0
    lower[0], upper[0] = np.floor(lower[0]), np.ceil(upper[0])  # integer bounds for the integer feature
    lower, upper = lower.astype(np.float32), upper.astype(np.float32)  # the search's precision
    constraints = cfx.Constraints(
        mutability=mutability,
        lower=lower.tolist(),
        upper=upper.tolist(),
        categorical_groups=groups,
        integer_features=[0],
    )
    name = draw(st.sampled_from(sorted(G.REGISTRY)))
    k_min = 2 if name == "dice" else 1
    K = draw(st.integers(k_min, 5 if PROFILE == "long" else 3))
    kind = draw(st.sampled_from(["linear", "mlp"]))
    target = rng.integers(0, 2, size=n).astype(np.int32)
    return {
        "d": d,
        "x": x,
        "constraints": constraints,
        "mutability": mutability,
        "lower": lower,
        "upper": upper,
        "groups": groups,
        "name": name,
        "K": K,
        "kind": kind,
        "target": target,
        "seed": seed,
    }


@settings(settings.get_profile(PROFILE))
@given(problems())
def test_every_generator_respects_constraints_on_random_problems(p):
    d, x, K = p["d"], p["x"], p["K"]
    clf = _classifier(p["kind"], d, seed=p["seed"])
    gen = _fitted(p["name"], p["kind"], d)
    res = cfx.generate(
        gen.replace(num_counterfactuals=K),
        clf,
        x,
        p["target"],
        key=jax.random.key(p["seed"]),
        constraints=p["constraints"],
        max_steps=30,
    )
    cf = np.asarray(res.counterfactuals)
    X = np.broadcast_to(x[:, None, :], cf.shape)
    label = f"{p['name']} on {p['kind']}, d={d}, K={K}, mutability={p['mutability']}"
    CHECKED["counterfactuals"] += cf.shape[0] * cf.shape[1]
    assert np.isfinite(cf).all(), label
    codes = np.array([CODES.index(m) for m in p["mutability"]])
    assert np.array_equal(cf[..., codes == 3], X[..., codes == 3]), f"immutable feature changed: {label}"
    assert np.all(cf[..., codes == 1] >= X[..., codes == 1]), f"increase-only feature decreased: {label}"
    assert np.all(cf[..., codes == 2] <= X[..., codes == 2]), f"decrease-only feature increased: {label}"
    outside = (cf < p["lower"]) | (cf > p["upper"])
    assert not outside.any(), (
        f"bounds violated: {label}: x'={cf[outside][:3]}, x={X[outside][:3]}, "
        f"feature {np.argwhere(outside)[0][-1]}, [{p['lower']}, {p['upper']}]"
    )
    if p["groups"]:
        group = cf[..., -2:]
        assert np.all(np.isin(group, [0.0, 1.0])) and np.all(group.sum(-1) == 1.0), f"one-hot group broken: {label}"
    assert np.array_equal(cf[..., 0], np.round(cf[..., 0])), f"integer feature off its grid: {label}"
    outcome = np.asarray(res.outcome)
    assert np.isin(outcome, range(len(cfx.OUTCOMES))).all(), label
    probs = np.asarray(clf.probs(cf.reshape(-1, d))).reshape(*cf.shape[:2], 2)
    p_target = np.take_along_axis(probs, p["target"][:, None, None].repeat(K, 1), -1)[..., 0]
    converged = outcome == cfx.OUTCOMES.index("converged")
    tau = float(res.threshold)
    assert np.all(p_target[converged] >= tau - 1e-5), f"converged below τ={tau}: {label}"
    # never a silent copy: a row out of steps and returned as the factual says "unchanged"
    copies = np.all(cf == X, axis=-1) & np.isin(outcome, [cfx.OUTCOMES.index(o) for o in ("max_steps", "unchanged")])
    assert np.array_equal(outcome == cfx.OUTCOMES.index("unchanged"), copies), f"outcome 'unchanged' wrong: {label}"
    np.testing.assert_allclose(np.asarray(res.target_probs), p_target, atol=1e-5, err_msg=label)


def teardown_module(module):
    print(f"\nproperty tests ({PROFILE} profile): {CHECKED['counterfactuals']} counterfactuals checked, 0 violations")

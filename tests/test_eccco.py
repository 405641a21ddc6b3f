"""ECCCo / ECCo: the objective's terms, the decay schedule, calibration checks, no recompiles."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import compile_counts

import cfx
from cfx import generators as G
from cfx.generators.eccco import decay, energy_penalty, set_size_penalty
from cfx.terms import TermContext, cross_entropy
from cfx.models.conformal import calibrate

KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def conformal(moons_split, moons_mlp):
    _, test = moons_split
    return calibrate(moons_mlp, test, alpha=0.05)  # held out from the MLP's training split


@pytest.fixture(scope="module")
def factuals(moons_split, moons_mlp):
    train, _ = moons_split
    return train.X[np.asarray(moons_mlp.predict(train.X)) == 0][:8]


def ctx_at(clf, x_cf, target, step):
    return TermContext(jnp.int32(target), clf.raw_logits(jnp.asarray(x_cf)), jnp.int32(step), None, clf)


def test_defaults_follow_the_spec():
    e = G.ECCCo()
    assert (e.cost, e.set_size, e.energy, e.learning_rate) == (0.1, 0.1, 0.5, 0.05)
    assert (e.optimizer, e.convergence, e.start, e.ridge, e.temperature, e.kappa) == (
        "sgd",
        "generator_conditions",
        "identity",
        0.0,
        0.1,
        1.0,
    )
    c = G.ECCo()
    assert (c.cost, c.energy, c.learning_rate, c.optimizer, c.convergence) == (0.001, 5.0, 0.25, "sgd", "threshold")
    assert G.make("eccco_no_conformal") == G.ECCCo(set_size=0.0)
    assert G.make("eccco_no_energy") == G.ECCCo(energy=0.0)
    assert G.make("ecco") == G.ECCo()


def test_decay_schedule_and_energy_term_are_exactly_as_specified(linear_classifier):
    x_cf = np.array([0.8, 0.9], np.float32)
    f_target = float(linear_classifier.logits(x_cf)[1])
    expected_phi = {0: 1.0, 1: 1.0, 5: np.exp(-0.5), 10: np.exp(-1.0)}
    for ridge in (0.0, 0.5):
        term = energy_penalty(ridge)
        for t, phi in expected_phi.items():
            assert float(decay(t)) == pytest.approx(phi, rel=1e-6)
            value = term(jnp.asarray(x_cf), None, ctx_at(linear_classifier, x_cf, 1, t))
            E = -f_target
            assert float(value) == pytest.approx(phi * (E + ridge * E**2), rel=1e-5)
    # the generator's own term is this one, with its weight
    energy = {p.name: p for p in G.ECCCo(ridge=0.5).terms()}["energy"]
    assert float(energy.fn(jnp.asarray(x_cf), None, ctx_at(linear_classifier, x_cf, 1, 5))) == pytest.approx(
        np.exp(-0.5) * (-f_target + 0.5 * f_target**2), rel=1e-5
    )


def test_set_size_penalty_is_zero_below_p_one_half(linear_classifier):
    term = set_size_penalty(0.6)
    below = jnp.array([0.2, 0.3])  # p(1|x) = σ(−0.5) < 0.5
    value, grad = jax.value_and_grad(lambda z: term(z, None, ctx_at(linear_classifier, z, 1, 0)))(below)
    assert float(value) == 0.0 and np.all(np.asarray(grad) == 0)
    above = np.array([0.6, 0.6], np.float32)  # p(1|x) = σ(0.2) > 0.5
    p1 = 1 / (1 + np.exp(-0.2))
    sig = 1 / (1 + np.exp(-(0.6 - np.array([p1, 1 - p1])) / 0.1))
    assert float(term(jnp.asarray(above), None, ctx_at(linear_classifier, above, 1, 0))) == pytest.approx(
        max(0.0, sig.sum() - 1), rel=1e-5
    )


def test_eccco_counterfactuals_have_lower_energy_than_generic(moons_mlp, conformal, factuals, moons_split):
    train, _ = moons_split
    eccco = G.ECCCo(cost=0.1).fit(conformal, train, key=KEY)
    res = cfx.generate(eccco, conformal, factuals, 1, key=KEY)
    generic = cfx.generate(G.Generic(cost=0.1), moons_mlp, factuals, 1, key=KEY)
    f_eccco = np.asarray(moons_mlp.logits(res.counterfactuals[:, 0]))[:, 1]
    f_generic = np.asarray(moons_mlp.logits(generic.counterfactuals[:, 0]))[:, 1]
    assert f_eccco.mean() > f_generic.mean() + 1.0  # E(x'|y+) = −f_{y+}(x') is lower
    assert np.all(np.asarray(res.target_probs) >= 0.5)
    assert set(res.terms) == {"yloss", "distance", "energy", "set_size", "total"}


def test_sweeping_energy_and_set_size_or_recalibrating_does_not_recompile(conformal, factuals, moons_split):
    train, test = moons_split
    gen = G.ECCCo().fit(conformal, train, key=KEY)
    cfx.generate(gen, conformal, factuals, 1, key=KEY, max_steps=20)
    before = compile_counts.search()
    for energy, set_size in [(0.1, 0.0), (1.0, 0.3), (0.0, 0.1)]:
        cfx.generate(gen.replace(energy=energy, set_size=set_size), conformal, factuals, 1, key=KEY, max_steps=20)
    recal = calibrate(conformal.base, test, alpha=0.2)
    cfx.generate(gen.fit(recal, train, key=KEY), recal, factuals, 1, key=KEY, max_steps=20)
    assert compile_counts.search() == before


def test_an_uncalibrated_classifier_is_refused_before_compiling(moons_mlp, factuals, moons_split):
    train, _ = moons_split
    before = compile_counts.search()
    for gen in (G.ECCCo(), G.ECCCo().fit(moons_mlp, train, key=KEY), G.make("eccco_no_energy", data=train)):
        assert gen.q_hat is None
        with pytest.raises(ValueError, match=r"cfx\.models\.calibrate"):
            cfx.generate(gen, moons_mlp, factuals, 1, key=KEY)
    assert compile_counts.search() == before
    # the no-conformal ablation needs no q̂
    res = cfx.generate(G.make("eccco_no_conformal"), moons_mlp, factuals, 1, key=KEY, max_steps=20)
    assert "set_size" not in res.terms


def test_ensembles_use_member_averaged_logits(moons_ensemble):
    x_cf = jnp.array([0.3, 0.1])
    members = np.asarray(moons_ensemble.apply_fn.member_logits(moons_ensemble.params, x_cf))  # (M, C)
    averaged = members.mean(0)
    ctx = ctx_at(moons_ensemble, x_cf, 1, 1)
    terms = {p.name: p.fn for p in G.ECCCo().terms()}
    assert float(terms["energy"](x_cf, None, ctx)) == pytest.approx(-averaged[1], rel=1e-5)
    assert float(terms["yloss"](x_cf, None, ctx)) == pytest.approx(float(cross_entropy(averaged, 1)), rel=1e-5)
    # not the ensemble's own (log mean probability) logits
    assert abs(float(moons_ensemble.logits(x_cf)[1]) - averaged[1]) > 1e-3


def test_ecco_runs_without_calibration(moons_mlp, factuals):
    res = cfx.generate(G.ECCo(), moons_mlp, factuals, 1, key=KEY, max_steps=30)
    assert bool(res.converged.all())
    assert set(res.terms) == {"yloss", "distance", "energy", "total"}


def test_bad_hyperparameters_are_named():
    with pytest.raises(ValueError, match="ECCCo.temperature"):
        G.ECCCo(temperature=0.0, q_hat=0.5).validate(1, 2, 2)
    with pytest.raises(ValueError, match="ECCCo.kappa"):
        G.ECCCo(kappa=-1.0, q_hat=0.5).validate(1, 2, 2)
    with pytest.raises(ValueError, match="ECCo.ridge"):
        G.ECCo(ridge=-0.1).validate(1, 2, 2)
    with pytest.raises(ValueError, match="decay_every"):
        G.ECCo(decay_every=0)

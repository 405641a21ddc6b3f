"""Any gradient generator's objective searched in a VAE's latent space (``in_latent_space``,
``latent_space``; CE.jl 0.1.5's ``latent_space = true``) and its use in the dynamics kind
(``latent_space:`` on a generator item; the ard-2023 preset's latent options). Small seeded
problems."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import cfx
import cfx.dynamics as dyn
import cfx.generators as G
from cfx.dynamics.reference import ReferenceTrainer, latent_generator_options
from cfx.experiments import load_config
from cfx.experiments.config import ConfigError
from cfx.generators.latent import VAESpace, in_latent_space, latent_space


@pytest.fixture(scope="module")
def problem():
    full = cfx.data.load("overlapping", n=120, seed=3, centers=[[0.2, -0.4], [1.9, 0.15]])
    train, test = cfx.data.train_test(full, test_size=0.2, seed=3, standardize=False)
    clf = ReferenceTrainer("linear", initial_epochs=5).initial(train, seed=0)
    vae = cfx.models.fit_vae(train, epochs=5, seed=0)
    x = np.asarray(test.X[np.asarray(test.y) == 0][:6])
    return train, clf, vae, x


def test_the_class_is_made_once_and_carries_both_sets_of_fields():
    L = in_latent_space(G.ClaPROAR)
    assert L is in_latent_space(G.ClaPROAR) and issubclass(L, VAESpace) and issubclass(L, G.ClaPROAR)
    g = L(variant="0.1.5", vae_epochs=7, latent_start="sample")
    assert g.latent and g.loss_weight == 5.0 and g.vae_epochs == 7 and L.name == "latent_claproar"
    with pytest.raises(ValueError, match="already searches a latent space"):
        in_latent_space(G.REVISE)
    with pytest.raises(ValueError, match="already searches a latent space"):
        in_latent_space(G.ECCCoPlus)
    with pytest.raises(TypeError, match="Generator subclass"):
        in_latent_space(int)
    with pytest.raises(ValueError, match="unknown option 'vae_epoch'"):
        latent_space(G.Generic(), vae_epoch=3)
    with pytest.raises(ValueError, match="space='standardized'"):
        latent_space(G.Generic(space="standardized"))


def test_latent_generic_is_revise(problem):
    """Generic's objective in the latent space is REVISE's: the same VAE, start and step give the same points."""
    train, clf, vae, x = problem
    opts = dict(cost=0.1, distance="frobenius", learning_rate=0.05, num_counterfactuals=3, latent_start="mean")
    a = cfx.generate(
        latent_space(G.Generic(**{k: v for k, v in opts.items() if k != "latent_start"}), latent_start="mean").replace(
            vae=vae
        ),
        clf,
        x,
        1,
        key=jax.random.key(0),
        max_steps=30,
    )
    b = cfx.generate(G.REVISE(**opts, vae=vae), clf, x, 1, key=jax.random.key(0), max_steps=30)
    np.testing.assert_allclose(np.asarray(a.counterfactuals), np.asarray(b.counterfactuals), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(a.steps), np.asarray(b.steps))
    assert np.asarray(a.steps).max() > 1  # it searched


def test_latent_gravitational_fits_its_bank_and_its_vae_and_lands_on_the_decoder(problem):
    train, clf, _, x = problem
    gen = latent_space(G.Gravitational(variant="0.1.5", num_counterfactuals=2), vae_epochs=3, latent_start="sample")
    gen = gen.fit(clf, train, key=jax.random.key(1))
    assert gen.bank.shape[:2] == (2, gen.bank_size) and gen.vae.n_features == 2 and gen.start_key is not None
    res = cfx.generate(gen, clf, x, 1, key=jax.random.key(0), max_steps=5)
    cf = np.asarray(res.counterfactuals)
    assert "gravity" in res.terms and np.all(np.isfinite(cf))
    # every point is a decoded latent point: the decoder's image, not the factual plus a step in x
    z = gen.vae.encode(cf.reshape(-1, 2))
    assert not np.allclose(cf, np.broadcast_to(x[:, None], cf.shape), atol=1e-3)
    assert np.isfinite(np.asarray(z)).all()


def test_preset_fills_the_latent_options_and_refuses_conflicts(tmp_path):
    cfg = load_config("configs/dynamics_paper_mitigation_latent.yaml")
    gens = {g.key: g for g in cfg.generators}
    assert set(gens) == {"latent", "latent_conservative", "gravitational", "claproar"}
    hp, vae = latent_generator_options("claproar")
    assert gens["claproar"].latent_options() == vae and {"space", "start"}.isdisjoint(gens["claproar"].hyperparams)
    assert gens["claproar"].hyperparams["step_tolerance"] == hp["step_tolerance"] == 1e-3
    from cfx.experiments.kinds.dynamics import _generators

    built = _generators(cfg)
    assert type(built["claproar"]).__name__ == "LatentClaPROAR" and built["claproar"].latent_start == "sample"
    assert built["latent_conservative"].threshold == 0.9 and built["latent"].start == "identity"

    base = "kind: dynamics\npreset: ard-2023\ndata: [overlapping]\nmodels: [linear]\n"
    for gens_yaml, path, text in [
        (
            "[{name: claproar, latent_space: {latent_start: mean}}]",
            "generators[0].latent_space.latent_start",
            "fixes 'latent_start'",
        ),
        (
            "[{name: claproar, latent_space: {vae_epoch: 3}}]",
            "generators[0].latent_space.vae_epoch",
            "not an option of the latent space",
        ),
        ("[{name: revise, latent_space: true}]", "generators[0].latent_space", "latent space of its own"),
    ]:
        f = tmp_path / "c.yaml"
        f.write_text(base + f"generators: {gens_yaml}\n")
        with pytest.raises(ConfigError) as e:
            load_config(f)
        assert e.value.path == path and text in str(e.value), (gens_yaml, e.value.path, str(e.value))


@pytest.mark.slow
def test_latent_mitigation_runs_in_a_simulation(problem):
    """(≈ 1 min, compiles: run with --runslow; the latent figure's config exercises the same path.)"""
    train, _, _, _ = problem
    full = cfx.data.load("overlapping", n=120, seed=3, centers=[[0.2, -0.4], [1.9, 0.15]])
    train, test = cfx.data.train_test(full, test_size=0.2, seed=3, standardize=False)
    hp, vae = latent_generator_options("claproar")
    gen = latent_space(G.make("claproar", **hp), **vae, vae_epochs=3)
    res = dyn.simulate(
        train,
        test,
        {"claproar": gen},
        model=ReferenceTrainer("linear", initial_epochs=3, retrain_epochs=1),
        rounds=2,
        mu=0.1,
        eval_every=2,
        max_steps=10,
        n_permutations=10,
        generative_epochs=1,
        draw="round",
    )
    rows = [r for r in res.history if r["round"] == 2]
    assert rows and all(np.isfinite(r["mmd_domain"]) for r in rows)
    assert all(0.0 <= r["validity"] <= 1.0 for r in res.history if "validity" in r and r["round"] >= 1)

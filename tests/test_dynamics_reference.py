"""The ard-2023 preset (cfx.dynamics.reference) and the general options it is built from:
the CE.jl 0.1.5 search (standardised space, mean over K with a K-scaled step, Frobenius set
terms, all-K stop, step tolerance), the batch-1 trainer as one scan, the cross-model pool, the
n = 0 rule, the metric variants, and the preset's bad-input behaviour. Small seeded problems."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import compile_counts

import cfx
import cfx.dynamics as dyn
import cfx.generators as G
from cfx.dynamics.reference import ReferenceTrainer, _train, _train_stacked, generator_options
from cfx.experiments.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data():
    full = cfx.data.load("overlapping", n=120, seed=3, centers=[[0.2, -0.4], [1.9, 0.15]])
    return full, *cfx.data.train_test(full, test_size=0.2, seed=3, standardize=False)


@pytest.fixture(scope="module")
def linear(data):
    return ReferenceTrainer("linear", initial_epochs=5).initial(data[1], seed=0)


# --------------------------------------------------------------------------- the search
def test_one_step_is_k_times_plain_descent_on_the_mean_objective_in_the_standardised_space(data, linear):
    """s₁ = s₀ − η·K·∇_s[(1/K) Σ_k BCE_k + λ‖X' − x‖_F], x' = μ + σ⊙s, s₀ = (x − μ)/σ + 0.1·N(0, I)."""
    full, train, _ = data
    gen = G.make("generic", **generator_options("generic")).with_space(full)
    x = np.asarray(train.X[:3])
    res = cfx.generate(gen, linear, x, 1, key=jax.random.key(0), max_steps=1, return_path=True)
    path = np.asarray(res.path)  # (n, K, 2, d) in x
    mu, sd, K = np.asarray(gen.space_mean), np.asarray(gen.space_scale), 5
    s0 = (path[:, :, 0] - mu) / sd
    np.testing.assert_allclose((s0 - (x[:, None] - mu) / sd).std(), 0.1, rtol=0.35)  # start: 0.1·N(0, I) in s

    def objective(s, xf):  # one factual's (K, d)
        xc = mu + sd * s
        f = jax.vmap(lambda v: linear.raw_logits(v[None])[0])(xc)
        bce = jnp.mean(jax.nn.softplus(-(f[:, 1] - f[:, 0])))
        return bce + 0.1 * jnp.sqrt(jnp.sum((xc - xf) ** 2) + 1e-12)

    grads = np.stack([np.asarray(jax.grad(objective)(jnp.asarray(s0[i]), x[i])) for i in range(3)])
    expected = mu + sd * (s0 - 0.01 * K * grads)
    moved = np.asarray(res.steps)[:, :, None] > 0
    np.testing.assert_allclose(
        np.where(moved, path[:, :, 1], path[:, :, 0]), np.where(moved, expected, path[:, :, 0]), rtol=1e-4, atol=1e-5
    )


def test_all_k_stop_together_and_the_step_tolerance_runs_every_step(data, linear):
    full, train, _ = data
    x = np.asarray(train.X[train.y == 0][:4])
    gen = G.make("generic", **generator_options("generic")).with_space(full)
    res = cfx.generate(gen, linear, x, 1, key=jax.random.key(1), max_steps=100)
    steps = np.asarray(res.steps)
    assert (steps == steps[:, :1]).all()  # a factual's K stop in the same step
    claproar = G.make("claproar", **generator_options("claproar")).with_space(full)
    res = cfx.generate(claproar, linear, x, 1, key=jax.random.key(1), max_steps=30)
    assert (np.asarray(res.steps) == 30).all()  # |step| < 1e-3 is not reached in 30 steps


def test_general_options_keep_cfx_defaults_and_refuse_bad_values():
    g = G.Generic()
    assert (g.space, g.k_terms, g.step_scale, g.stop_rule, g.step_tolerance) == ("input", "sum", "one", "each", None)
    assert not g.latent and G.REVISE().latent
    for field, bad in (("space", "z"), ("k_terms", "max"), ("step_scale", 2), ("stop_rule", "any")):
        with pytest.raises(ValueError, match=f"Generic.{field} must be one of"):
            G.Generic(**{field: bad})
    with pytest.raises(ValueError, match="with_space"):
        G.Generic(space="standardized").validate(1, 2, 2)
    with pytest.raises(ValueError, match="does not apply"):
        G.REVISE(space="standardized").validate(1, 2, 2)
    with pytest.raises(ValueError, match="no reference generator 'wachter'"):
        generator_options("wachter")


def test_revise_sampled_start_differs_per_counterfactual_and_is_reproducible(data):
    _, train, _ = data
    gen = G.REVISE(latent_start="sample", vae_epochs=2).fit(None, train, key=jax.random.key(0))
    x = jnp.broadcast_to(jnp.asarray(train.X[:3], jnp.float32)[:, None], (3, 4, 2))
    z = np.asarray(gen.encode(x))
    assert len(np.unique(z.reshape(12, -1), axis=0)) == 12  # every factual and k its own draw
    np.testing.assert_array_equal(z, np.asarray(gen.encode(x)))
    mean = np.asarray(G.REVISE(vae=gen.vae).encode(x))
    assert not np.allclose(z, mean) and np.abs(z - mean).max() < 10


# --------------------------------------------------------------------------- the trainer
def test_batch1_scan_equals_a_python_loop_of_adam_steps(data):
    _, train, _ = data
    X, y = jnp.asarray(train.X[:5], jnp.float32), jnp.asarray(train.y[:5])
    t = ReferenceTrainer("linear")
    p0 = t.net.init(jax.random.key(0), 2)
    got = _train(t.net, p0, X, y, 2, learning_rate=1e-3)
    batched = _train(t.net, p0, X, y, 2, learning_rate=1e-3, batch_size=2)  # batches [0 1] [2 3] [4]
    opt = optax.adam(1e-3)

    @jax.jit
    def step(p, s, x, c):  # one example: logit-BCE softplus(f) − c·f
        g = jax.grad(lambda p: jax.nn.softplus(t.net.one(p, x[None])[0, 0]) - c * t.net.one(p, x[None])[0, 0])(p)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    p, s = p0, opt.init(p0)
    for _ in range(2):
        for i in range(5):
            p, s = step(p, s, X[i], jnp.float32(y[i]))
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(p)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)

    @jax.jit
    def batch_step(p, s, xb, cb):  # one batch: mean logit-BCE
        f = lambda p: t.net.one(p, xb)[:, 0]  # noqa: E731
        g = jax.grad(lambda p: jnp.mean(jax.nn.softplus(f(p)) - cb * f(p)))(p)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    p, s = p0, opt.init(p0)
    for _ in range(2):
        for lo in (0, 2, 4):
            p, s = batch_step(p, s, X[lo : lo + 2], jnp.asarray(y[lo : lo + 2], jnp.float32))
    for a, b in zip(jax.tree_util.tree_leaves(batched), jax.tree_util.tree_leaves(p)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    ens = ReferenceTrainer("ensemble")
    params = ens.net.init(jax.random.key(0), 2)
    members = jax.vmap(ens.net.one, (0, None))(params, X)  # (5, n, 1)
    clf = cfx.Classifier(ens.net, params, n_features=2, n_classes=2)
    np.testing.assert_allclose(np.asarray(clf.raw_logits(X))[:, 1], np.asarray(members.mean(0))[:, 0], rtol=1e-5)


def test_retrain_many_equals_each_models_own_retraining(data):
    """One stacked program for several systems (linear, MLP, a dropout ensemble, two data
    sets, batch 1 and 2) gives each model what its own ``retrain`` gives."""
    import dataclasses

    _, train, _ = data
    small = dataclasses.replace(train, X=np.asarray(train.X[:12]), y=np.asarray(train.y[:12]))
    other = dataclasses.replace(small, X=np.asarray(small.X)[::-1].copy(), y=np.asarray(small.y)[::-1].copy())
    trainers = [
        ReferenceTrainer("linear", 2, 2),
        ReferenceTrainer("mlp", 2, 2, widths=(4,), dropout=0.25),
        ReferenceTrainer("ensemble", 2, 2, widths=(4,), n_members=3, dropout=0.25),
        ReferenceTrainer("mlp", 2, 2, widths=(4,), batch_size=5, retrain_batch_size=2),
    ]
    jobs = [
        (t, cfx.Classifier(t.net, t.net.init(jax.random.key(i), 2), n_features=2, n_classes=2), d)
        for i, t in enumerate(trainers)
        for d in (small, other)
    ]
    got = ReferenceTrainer.retrain_many(jobs)
    for (t, clf, d), new in zip(jobs, got):
        want = t.retrain(clf, d, seed=0)
        for a, b in zip(jax.tree_util.tree_leaves(new.params), jax.tree_util.tree_leaves(want.params)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
        assert new.apply_fn == want.apply_fn and not np.allclose(new.raw_logits(d.X), clf.raw_logits(d.X))


def test_ensemble_probabilities_and_the_searchs_averaged_logit(data):
    """combine="probabilities": softmax of the logits is mean_m σ(f_m) (CE.jl's ``probs``); the
    member_logit_bce yloss is the logit-BCE of mean_m f_m (CE.jl's ``logits``)."""
    from cfx import terms

    X = jnp.asarray(data[1].X[:6], jnp.float32)
    ens = ReferenceTrainer("ensemble", combine="probabilities")
    params = ens.net.init(jax.random.key(1), 2)
    params = jax.tree_util.tree_map(lambda a: a * 3.0, params)  # members that disagree
    f = jax.vmap(ens.net.one, (0, None))(params, X)[..., 0]  # (5, n)
    clf = cfx.Classifier(ens.net, params, n_features=2, n_classes=2)
    np.testing.assert_allclose(np.asarray(clf.probs(X))[:, 1], np.asarray(jax.nn.sigmoid(f).mean(0)), rtol=1e-5)
    ctx = terms.TermContext(jnp.int32(1), clf.raw_logits(X[0]), jnp.int32(0), None, clf)
    np.testing.assert_allclose(terms.member_logit_bce(X[0], X[0], ctx), jax.nn.softplus(-f[:, 0].mean()), rtol=1e-5)
    with pytest.raises(ValueError, match="combine must be one of"):
        ReferenceTrainer("ensemble", combine="median")


def test_gradient_dropout_is_active_only_under_differentiation():
    """Flux 0.13's Dropout (active = nothing): identity in a plain pass; under a gradient a
    mask with E = 1 (kept units scaled by 1/(1 − p)) that changes with its input."""
    from cfx.dynamics.reference import gradient_dropout

    h = jax.random.normal(jax.random.key(0), (400, 64))
    np.testing.assert_array_equal(np.asarray(jax.jit(gradient_dropout, static_argnums=1)(h, 0.25)), np.asarray(h))
    g = np.asarray(jax.grad(lambda v: jnp.sum(gradient_dropout(v, 0.25)))(h))
    assert np.all((g == 0) | np.isclose(g, 1 / 0.75))
    assert abs((g == 0).mean() - 0.25) < 0.02
    g2 = np.asarray(jax.grad(lambda v: jnp.sum(gradient_dropout(v, 0.25)))(h + 1e-3))
    assert (g != g2).mean() > 0.2  # a new input draws a new mask
    assert not ReferenceTrainer("linear", dropout=0.1).net.stochastic_under_grad


def test_a_dropout_search_judges_convergence_on_the_plain_network(data):
    """CE.jl 0.1.5 takes gradients through the dropped-out network but checks p ≥ τ with
    ``probs`` outside Zygote: the reported probabilities are the plain model's at x'."""
    full, train, _ = data
    clf = ReferenceTrainer("mlp", initial_epochs=2, dropout=0.5).initial(train, seed=0)
    assert clf.apply_fn.stochastic_under_grad
    gen = G.make("generic", **generator_options("generic")).with_space(full)
    res = cfx.generate(gen, clf, np.asarray(train.X[:4]), 1, key=jax.random.key(0), max_steps=8)
    p = np.asarray(clf.probs(np.asarray(res.counterfactuals).reshape(-1, 2)))[:, 1].reshape(res.target_probs.shape)
    np.testing.assert_allclose(np.asarray(res.target_probs), p, rtol=1e-5, atol=1e-6)


def test_vae_decoder_penalty():
    """ELBO + decoder_l2 · Σ θ² over the decoder's weights and biases (CE.jl 0.1.5: 0.01)."""
    from cfx.models.step import Batch
    from cfx.models.vae import ELBO, VAENet, _Forward

    net = VAENet(n_features=2)
    params = net.init(jax.random.key(0), jnp.zeros((1, 2)), jax.random.key(0))
    batch = Batch(jnp.ones((4, 2)), jnp.zeros(4, jnp.int32), jnp.ones(4))
    args = dict(apply=_Forward(net), extra=None)
    plain = ELBO()(params, batch, jax.random.key(1), **args)[0]
    pen = ELBO(decoder_l2=0.01)(params, batch, jax.random.key(1), **args)[0]
    dec = sum(float(jnp.sum(a**2)) for k in ("dec_0", "out") for a in jax.tree_util.tree_leaves(params["params"][k]))
    np.testing.assert_allclose(float(pen - plain), 0.01 * dec, rtol=1e-4)


# --------------------------------------------------------------------------- the loop
REF = dict(
    rounds=3,
    mu=0.1,
    eval_every=3,
    num_counterfactuals=5,
    max_steps=10,
    n_permutations=10,
    grid_samples=50,
    draw="round",
    metrics=dyn.MetricOptions.ard(),
)


def test_cross_model_pool_no_recompiles_after_round_1_and_bad_input(data):
    full, train, test = data
    gens = {"gravitational": G.make("gravitational", **generator_options("gravitational")).with_space(full)}
    models = {"linear": ReferenceTrainer("linear", 5, 2), "mlp": ReferenceTrainer("mlp", 5, 2)}
    counts, compiles = {}, []

    def on_compile(event, seconds, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    def count(rep, t, rows):
        counts[t] = (
            compile_counts.search(),
            compile_counts.dynamics(),
            _train._cache_size(),
            _train_stacked._cache_size(),
            len(compiles),
        )

    jax.monitoring.register_event_duration_secs_listener(on_compile)
    try:
        res = dyn.simulate(train, test, gens, model=models, on_round=count, **REF)
    finally:
        jax.monitoring.unregister_event_duration_listener(on_compile)
    assert counts[1] == counts[3], f"a round recompiled something: {counts}"
    rows = [r for r in res.history if r["round"] == 1]
    assert {(r["model"], r["generator"]) for r in rows} == {(m, g) for m in models for g in gens}
    assert len({(r["pool"], r["chosen"]) for r in rows}) == 1  # one pool over every model x generator
    final = [r for r in res.history if r["round"] == 3]
    assert all(0 <= r["disagreement"] <= 1 and -1 <= r["f1_change"] <= 1 for r in final)
    with pytest.raises(ValueError, match="mixed model kinds in one cross-model pool"):
        dyn.simulate(train, test, gens, model={"a": models["linear"], "b": "linear"}, **REF)
    with pytest.raises(ValueError, match="draw must be one of"):
        dyn.simulate(train, test, gens, model=models, **{**REF, "draw": "ceil"})


def test_an_empty_draw_skips_the_round_and_is_reported_not_a_stop(data):
    """n = round(μ·|pool|) = 0 every round (μ tiny): nothing moves, no stop, every round reported."""
    full, train, test = data
    gens = {"generic": G.make("generic", **generator_options("generic")).with_space(full)}
    res = dyn.simulate(train, test, gens, model=ReferenceTrainer("linear", 5, 2), **{**REF, "mu": 0.001})
    assert res.stopped == []
    later = [r for r in res.history if r["round"] > 0]
    assert [r["round"] for r in later] == [1, 2, 3] and all(r["skipped"] and r["chosen"] == 0 for r in later)
    np.testing.assert_array_equal(res.final[0]["generic"]["data"].X, train.X)
    assert [r for r in res.history if r["round"] == 3][0]["param_change"] == 0.0
    with pytest.raises(ValueError, match="constraints_scope must be 'schema' or 'categorical'"):
        dyn.simulate(train, test, gens, model=ReferenceTrainer("linear", 5, 2), **REF, constraints_scope="none")


def test_california_sklearn_has_scikit_learns_eight_features():
    if not any((Path(p) / "california/housing.csv").exists() for p in cfx.data.data_dirs()):
        pytest.skip("california/housing.csv not in the data directories")
    d = cfx.data.load("california_sklearn", n=200, seed=0)
    assert d.X.shape == (200, 8) and not d.schema.constraints().categorical_groups


def test_metric_variants():
    with pytest.raises(ValueError, match="metrics.f1 must be one of"):
        dyn.MetricOptions(f1="micro")
    from cfx.evaluation.shift import macro_f1, per_element_change as _per_element_change

    y, p = jnp.array([0, 0, 1, 1, 1]), jnp.array([0, 1, 1, 1, 0])
    assert float(macro_f1(y, p, 2)) == pytest.approx((0.5 + 2 / 3) / 2)
    a = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)}
    b = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    assert float(_per_element_change(a, b, False)) == pytest.approx((np.sqrt(6) / 6 + 0) / 2)
    assert float(_per_element_change(a, b, True)) == pytest.approx((2 * np.sqrt(3) / 3) / 5)  # 2 + 3 member tensors


# --------------------------------------------------------------------------- the preset
def _parse(raw):
    from cfx.experiments.config import RawConfig
    from cfx.experiments.kinds import get_kind

    return get_kind("dynamics").parse(RawConfig(raw))


BASE = {
    "kind": "dynamics",
    "name": "t",
    "preset": "ard-2023",
    "data": [{"name": "overlapping"}],
    "models": ["linear"],
    "generators": ["generic"],
}


def test_the_preset_fills_the_reference_and_refuses_what_it_fixes():
    cfg = _parse(BASE)
    assert cfg.simulation.pool_scope == "all" and cfg.simulation.draw == "round"
    assert cfg.models[0].trainer == "reference" and cfg.models[0].batch_size == 1
    assert cfg.generators[0].hyperparams["space"] == "standardized" and not cfg.data[0].standardize
    with pytest.raises(ConfigError, match="unknown preset 'ard-2024'.*available: ard-2023"):
        _parse({**BASE, "preset": "ard-2024"})
    with pytest.raises(ConfigError, match="preset 'ard-2023' fixes this to 'round'"):
        _parse({**BASE, "simulation": {"draw": "at_least_one"}})
    with pytest.raises(ConfigError, match="generators\\[0\\].cost: preset 'ard-2023' fixes 'cost' to 0.1"):
        _parse({**BASE, "generators": [{"name": "generic", "cost": 0.5}]})
    with pytest.raises(ConfigError, match="models\\[0\\].name: preset 'ard-2023' has the reference models"):
        _parse({**BASE, "models": ["jem"]})
    with pytest.raises(ConfigError, match="models\\[0\\].activation: not an option of the reference trainer"):
        _parse(
            {
                **{k: v for k, v in BASE.items() if k != "preset"},
                "models": [{"name": "mlp", "trainer": "reference", "activation": "tanh"}],
            }
        )
    with pytest.raises(
        ConfigError, match="models: mixed model kinds in one cross-model pool.*linear: reference, mlp: cfx"
    ):
        _parse(
            {
                **{k: v for k, v in BASE.items() if k != "preset"},
                "simulation": {"pool_scope": "all"},
                "models": [{"name": "linear", "trainer": "reference"}, "mlp"],
            }
        )
    assert cfg.simulation.constraints == "categorical"
    m = cfg.models[0]
    assert m.options["retrain_batch_size"] == 1 and m.options["combine"] == "probabilities"
    assert m.make_trainer().combine == "probabilities" and m.make_trainer().retrain_batch_size == 1
    assert generator_options("revise")["vae_batch_size"] == 50 and generator_options("revise")["vae_decoder_l2"] == 0.01


def test_paper_configs_parse_and_the_smoke_config_runs(tmp_path):
    from cfx import experiments

    for name in (
        "dynamics_paper",
        "dynamics_paper_mitigation",
        "dynamics_paper_real",
        "dynamics_paper_real_mitigation",
    ):
        cfg = experiments.load_config(ROOT / "configs" / f"{name}.yaml")
        assert cfg.preset == "ard-2023" and cfg.simulation.n_permutations == 100
    cfg = experiments.load_config(ROOT / "configs" / "dynamics_paper_smoke.yaml", output=str(tmp_path / "out"))
    res = experiments.run(cfg, progress=False)
    final = res.tables["final"]
    assert set(final["model"]) == {"linear", "mlp"} and set(final["generator"]) == {"generic"}
    assert (final[final["metric"] == "mmd_domain"]["round"] == 2).all()


def test_the_paper_configs_use_the_papers_own_draws():
    """synthetic_data.qmd: Random.seed!(42), then the four sets (cfx.data.julia_mljbase); the linearly
    separable centres are the stream's first four uniforms."""
    from cfx.data.julia_mljbase import ard2023_synthetic
    from cfx.data.julia_rng import mljbase_blob_centers
    from cfx.experiments import load_config

    cfg = load_config(ROOT / "configs" / "dynamics_paper.yaml")
    assert {d.name: d.realisation for d in cfg.data} == dict.fromkeys(
        ("linearly_separable", "overlapping", "circles", "moons"), "ard-2023"
    )
    X, y = ard2023_synthetic("linearly_separable")
    means = np.stack([X[y == 0].mean(0), X[y == 1].mean(0)])
    np.testing.assert_allclose(means, mljbase_blob_centers(42, center_box=(-2, 2)), atol=0.02)

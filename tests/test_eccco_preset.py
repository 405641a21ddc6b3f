"""``preset: eccco-2024`` and its general options: the reference sampler, the reference JEM loss,
ensembles combining logits, the empty-set rule, the factual protocol and the preset's bad input."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cfx
import cfx.sampling
from cfx.experiments import ConfigError, load_config, parse_config
from cfx.data.julia_rng import Xoshiro, mljbase_blob_centers
from cfx.experiments.kinds.eccco.preset import DECAY_RATE, LS_CENTERS, REFERENCE
from cfx.experiments.kinds.eccco.runner import select_factuals

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _linear(w, b):
    """A 2-class linear classifier with logits [0, w·x + b]."""

    def apply(params, x):
        z = x @ params["w"] + params["b"]
        return jnp.stack([jnp.zeros_like(z), z], -1)

    return cfx.Classifier(apply, {"w": jnp.asarray(w, jnp.float32), "b": jnp.float32(b)}, 2, 2)


def test_paper_configs_parse_with_the_preset_filling_each_data_set():
    cfg = load_config(CONFIGS / "eccco_paper.yaml")
    assert cfg.preset == "eccco-2024"
    assert (cfg.sampling.mode, cfg.factuals.pool, cfg.factuals.targets, cfg.domain, cfg.runs_vary) == (
        "per_target",
        "train",
        "random_pair",
        "data_range",
        "factuals",
    )
    ls = next(d for d in cfg.data if d.name == "linearly_separable")
    assert ls.n == 1250 and ls.options["centers"] == LS_CENTERS and "center_box" not in ls.options
    assert ls.models["jem"]["jem_loss"] == "reference" and ls.models["jem"]["sampler_batch"] == 50
    assert ls.models["ensemble"]["combine"] == "logits" and ls.models["jem"]["sampler_calls"] == 1
    # the reference's training schedule: fixed batches, bagged members, the JEM ensemble's members in turn
    assert ls.models["mlp"]["batch_order"] == "fixed" and ls.models["ensemble"]["bagging"] == 0.8
    assert ls.models["jem"]["epoch_pass"] and ls.models["jem_ensemble"]["members"] == "sequential"
    assert "members" not in ls.models["jem"] and "bagging" not in ls.models["mlp"]
    assert (
        ls.generators["revise"]["vae_activations"] == ["sigmoid", "tanh"]
        and ls.generators["revise"]["latent_start"] == "sample"
    )
    assert ls.generators["revise"]["resample"]
    # the run behind the paper's tables: the grid-selected search (append_best_params), decay at every step
    assert ls.generators["eccco"] == {
        "learning_rate": 0.05,
        "convergence": "generator_conditions",
        "cost": 0.1,
        "set_size": 0.1,
        "energy": 0.5,
        "ridge": 0.0,
        "decay_rate": DECAY_RATE,
        "decay_every": 1,
        "empty_set": "complement",
    }
    assert ls.generators["wachter"]["learning_rate"] == 0.05 and ls.generators["schut"]["max_changes"] == 20
    cal = next(d for d in cfg.data if d.key == "california")  # the reference's 8 raw columns
    assert cal.name == "california_raw" and cal.models["jem"]["sampler_batch"] == 10
    assert cal.generators["eccco"]["energy"] == 0.5
    moons = next(d for d in cfg.data if d.name == "moons")
    assert moons.models["jem"]["epochs"] == 500 and moons.models["jem"]["sampler_batch"] == 10
    assert moons.options == {"noise": 0.1, "yshift": 0.3}  # MLJBase's make_moons
    assert parse_config(cfg.to_dict(), name=cfg.name) == cfg
    quick = load_config(CONFIGS / "eccco_paper_quick.yaml")
    assert [d.name for d in quick.data] == ["linearly_separable", "moons"]
    # the scripts' own search (no grid-search file): η 0.01, λ3 0.05, the Experiment's decay (0.1, 5)
    scripts = parse_config(
        {"kind": "eccco", "name": "t", "preset": "eccco-2024-scripts", "data": ["linearly_separable"]}
    )
    assert scripts.data[0].generators["eccco"] == {
        "learning_rate": 0.01,
        "convergence": "generator_conditions",
        "cost": 0.1,
        "set_size": 0.1,
        "energy": 0.05,
        "ridge": 0.0,
        "empty_set": "complement",
    }
    assert scripts.data[0].models == ls.models


def test_paper_values_cover_every_data_set_and_model_with_valid_only_tables():
    from cfx.experiments.kinds.eccco.paper import PAPER, PAPER_VALID

    assert {d for d, _ in PAPER} == {"linearly_separable", "moons", "circles", "gmsc", "california", "mnist"}
    assert set(PAPER_VALID) == set(PAPER) and all(len(c) == 4 for c in PAPER.values())
    assert PAPER[("linearly_separable", "eccco")][0] == (0.17, 0.31, None, 1.44)  # the LS MLP cell
    assert PAPER[("moons", "schut")][0][2] == 0.79 and PAPER_VALID[("moons", "schut")][0][2] is None


def test_julia_stream_and_the_reference_blob_centres():
    # Julia's documented stream: Random.seed!(1234); rand(6) (Random docs, Julia >= 1.7).
    np.testing.assert_array_equal(
        Xoshiro(1234).rand(6),
        [
            0.32597672886359486,
            0.5490511363155669,
            0.21858665481883066,
            0.8942454282009883,
            0.35311164439921205,
            0.39425536741585077,
        ],
    )
    c = mljbase_blob_centers(42)
    np.testing.assert_allclose(c, LS_CENTERS, atol=1e-8)
    np.testing.assert_allclose(c.ravel(order="F"), 2 * Xoshiro(42).rand(4) - 1)  # column-major fill
    assert abs(np.linalg.norm(c[0] - c[1]) - 0.5762) < 1e-4
    # A config that draws its own centres keeps them (the preset adds none).
    cfg = parse_config(
        {
            "kind": "eccco",
            "name": "t",
            "preset": "eccco-2024",
            "data": [{"name": "linearly_separable", "center_box": [-1.0, 1.0]}],
        }
    )
    assert "centers" not in cfg.data[0].options
    with pytest.raises(ValueError, match="seed must be an int"):
        Xoshiro(-1)


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ConfigError, match=r"unknown preset 'eccco-2023'.*available: eccco-2024"):
        parse_config(
            {
                "kind": "eccco",
                "name": "t",
                "preset": "eccco-2023",
                "data": ["moons"],
                "models": ["mlp"],
                "generators": ["wachter"],
            }
        )


def test_a_setting_the_preset_fixes_is_refused_and_a_filled_one_is_the_configs():
    with pytest.raises(ConfigError, match=r"sampling\.steps.*fixes this to 500"):
        parse_config(
            {"kind": "eccco", "name": "t", "preset": "eccco-2024", "data": ["moons"], "sampling": {"steps": 100}}
        )
    cfg = parse_config(
        {
            "kind": "eccco",
            "name": "t",
            "preset": "eccco-2024",
            "data": [{"name": "moons", "models": {"mlp": {"epochs": 7}}, "generators": {"eccco": {"energy": 0.3}}}],
        }
    )
    moons = cfg.data[0]
    assert moons.models["mlp"]["epochs"] == 7 and moons.models["mlp"]["widths"] == [32, 32, 32]
    assert moons.generators["eccco"]["energy"] == 0.3 and moons.generators["eccco"]["learning_rate"] == 0.05


def test_bad_option_values_name_the_key():
    base = {"kind": "eccco", "name": "t", "data": ["moons"], "models": ["mlp"], "generators": ["wachter"]}
    with pytest.raises(ConfigError, match=r"sampling\.mode.*per_target"):
        parse_config({**base, "sampling": {"mode": "per_factual"}})
    with pytest.raises(ConfigError, match=r"models\[0\]\.jem_loss"):
        parse_config({**base, "models": [{"name": "jem", "jem_loss": "julia"}]})
    with pytest.raises(ConfigError, match=r"eccco_l1 needs per-class samples"):
        parse_config({**base, "generators": ["eccco_l1"], "sampling": {"mode": "per_target"}})


def test_every_reference_data_set_is_a_cfx_data_set():
    assert set(REFERENCE) <= set(cfx.data.list_datasets())


def test_per_target_samples_divide_the_gradient_by_the_chain_count_before_the_clip():
    def apply(params, x):
        z = x @ params["w"]
        return jnp.stack([-z, z], -1)

    clf = cfx.Classifier(apply, {"w": jnp.asarray([4.0, 0.0])}, 2, 2)
    X = np.array([[-100.0, -100.0], [100.0, 100.0]], np.float32)  # a box far wider than the moves
    t = np.array([0, 1], np.int32)

    def run(n_chains, steps):
        return np.asarray(
            cfx.sampling.per_target_samples(
                clf,
                X,
                t,
                key=jax.random.key(0),
                n_chains=n_chains,
                steps=steps,
                keep=5,
                fresh_prob=0.0,
                noise_scale=0.0,
            )
        )

    # no noise, no fresh chains: every chain of a target starts at the same point (the buffer's one
    # point) and moves along x0 by min(4 / n, 0.01) per step: down for target 0, up for target 1
    for n, per_step in ((20, 0.01), (1000, 0.004)):
        a, b = run(n, 100), run(n, 200)
        assert a.shape == (2, 5, 2) and np.ptp(a[0, :, 0]) < 1e-4
        np.testing.assert_allclose(b[:, :, 0] - a[:, :, 0], [[-100 * per_step] * 5, [100 * per_step] * 5], rtol=1e-3)
        np.testing.assert_allclose(b[:, :, 1], a[:, :, 1])
    lo, hi = cfx.sampling.scalar_bounds(X)
    assert (lo, hi) == pytest.approx((-300.0, 300.0), rel=1e-5)  # one interval: μ_j ± 3σ_j over all j
    with pytest.raises(ValueError, match="targets"):
        cfx.sampling.per_target_samples(clf, X, [0, 2], key=jax.random.key(0))


def test_reference_jem_loss_trains_a_model_and_keeps_its_ring_buffer():
    data = cfx.data.load("linearly_separable", n=200, seed=0)
    loss = cfx.models.ReferenceJEMLoss(sgld_steps=5, sampler_batch=10)
    clf, state = cfx.models.fit(data, "jem", loss=loss, epochs=3, batch_size=50, seed=0, return_state=True)
    buf = state.extra
    assert int(buf.filled) == 10 + 3 * 4 * 10 and int(buf.head) == int(buf.filled) % loss.buffer_size
    assert float(buf.lower) < float(buf.upper)
    x = np.asarray(buf.x[: int(buf.filled)])
    assert np.all(x >= float(buf.lower) - 1e-6) and np.all(x <= float(buf.upper) + 1e-6)
    assert np.mean(np.asarray(clf.predict(data.X)) == data.y) > 0.9
    with pytest.raises(ValueError, match="sampler_batch"):
        cfx.models.ReferenceJEMLoss(sampler_batch=0)
    # Two sampler calls per iteration (the reference's evaluation pass): the buffer fills twice as fast.
    loss2 = cfx.models.ReferenceJEMLoss(sgld_steps=5, sampler_batch=10, sampler_calls=2)
    _, state2 = cfx.models.fit(data, "jem", loss=loss2, epochs=1, batch_size=50, seed=0, return_state=True)
    assert int(state2.extra.filled) == 10 + 1 * 4 * 2 * 10
    with pytest.raises(ValueError, match="sampler_calls"):
        cfx.models.ReferenceJEMLoss(sampler_calls=0)


def test_ensemble_combining_logits_averages_member_logits():
    from cfx.experiments.kinds.eccco.runner import _combined
    from cfx.experiments.kinds.eccco.schema import ModelSpec

    data = cfx.data.load("moons", n=100, seed=0)
    ens = cfx.models.fit(data, "ensemble", epochs=2, n_members=3, seed=0)
    both = _combined(ens, ModelSpec(name="ensemble", combine="logits"))
    members = cfx.models.ensemble.member_logits(ens, jnp.asarray(data.X[:4]))
    np.testing.assert_allclose(np.asarray(both.logits(data.X[:4])), np.asarray(members.mean(0)), rtol=1e-5, atol=1e-6)
    assert _combined(ens, ModelSpec(name="ensemble")) is ens


def test_empty_set_rule_counts_the_complement_only_when_the_hard_set_is_empty():
    from cfx import terms
    from cfx.generators.eccco import set_size_penalty

    logits = jnp.asarray([[0.0, 1.0], [0.0, 6.0]])  # p(1) = 0.73 (set empty at q̂ = 0.1), 0.998 (set {1})
    ctx = terms.TermContext(logits=logits, target=jnp.asarray([1, 1]), step=0, classifier=None, data=None)
    plain = np.asarray(set_size_penalty(0.1, empty_set="none")(None, None, ctx))
    rule = np.asarray(set_size_penalty(0.1, empty_set="complement")(None, None, ctx))
    p = jax.nn.softmax(logits)
    c = jax.nn.sigmoid((0.1 - (1 - p)) / 0.1)
    assert rule[0] == pytest.approx(max(0.0, float(jnp.sum(1 - c[0])) - 1.0), rel=1e-5)
    assert rule[1] == pytest.approx(plain[1]) and rule[0] > plain[0]
    with pytest.raises(ValueError, match="empty_set"):
        cfx.generators.ECCCo(empty_set="always", q_hat=0.1).validate(1, 2, 2)


def test_random_pairs_draw_factuals_predicted_as_their_class_with_another_target():
    data = cfx.data.load("linearly_separable", n=200, seed=1)
    clf = cfx.models.fit(data, "mlp", epochs=20, seed=0)
    x, t, fig = select_factuals(clf, data, 50, 0, data, pool="train", targets="random_pair")
    pred = np.asarray(clf.predict(x))
    assert fig is None and x.shape == (50, 2) and np.all(pred != t) and set(np.unique(t)) == {0, 1}


def test_runs_vary_factuals_trains_once_and_redraws_the_factuals(tmp_path):
    from cfx.experiments import run

    raw = {
        "kind": "eccco",
        "name": "t",
        "runs_vary": "factuals",
        "runs": 2,
        "n_factuals": 5,
        "sampling": {"mode": "per_target", "n_chains": 4, "steps": 3, "keep": 2},
        "factuals": {"pool": "train", "targets": "random_pair"},
        "domain": "data_range",
        "data": [{"name": "moons", "n": 200}],
        "models": [{"name": "mlp", "epochs": 2}],
        "generators": [{"name": "wachter"}, {"name": "eccco", "empty_set": "complement"}],
    }
    import yaml

    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(raw))
    rep = run(path, out=tmp_path / "o", progress=False)
    assert len(rep.tables["models"]) == 1  # one model, trained in run 0, used by both runs
    res = rep.tables["results"]
    u = res[(res["metric"] == "unfaithfulness_ref") & (res["generator"] == "eccco")]["value"].to_numpy()
    assert len(u) == 2 and u[0] != u[1] and np.all(np.isfinite(u))
    assert {"unfaithfulness_ref_valid", "implausibility_valid"} <= set(res["metric"])


def test_data_range_narrows_the_bounds_to_the_training_range():
    from cfx.experiments.kinds.eccco.runner import _data_range

    X = np.array([[0.0, -2.0], [1.0, 3.0]])
    c = _data_range(cfx.Constraints(lower=(-np.inf, -1.0), upper=(np.inf, np.inf)), X)
    assert c.lower == (0.0, -1.0) and c.upper == (1.0, 3.0)
    assert _data_range(cfx.Constraints(), X).lower == (0.0, -2.0)


def test_random_pairs_on_digits_put_the_figures_nine_first_with_target_seven():
    data = cfx.data.load("digits", seed=0)
    clf = cfx.models.fit(data, "mlp", epochs=2, seed=0)
    x, t, fig = select_factuals(clf, data, 10, 0, data, pool="train", targets="random_pair")
    assert fig == 0 and t[0] == 7 and data.y[np.flatnonzero((data.X == x[0]).all(axis=1))[0]] == 9
    assert np.all(np.asarray(clf.predict(x[1:])) != t[1:])


def test_mnist_without_its_files_is_skipped_under_the_preset(tmp_path):
    from cfx.experiments.kinds.eccco.runner import available, check, expected

    cfg = parse_config(
        {
            "kind": "eccco",
            "name": "t",
            "preset": "eccco-2024",
            "data": [{"name": "mnist", "optional": True, "data_dir": str(tmp_path)}],
        }
    )
    assert cfg.data[0].models["jem"]["sgld_steps"] == 25  # the preset still fills its settings
    assert not available(cfg.data[0]) and expected(cfg) == [] and check(cfg) == {}


def test_reference_vae_options_add_the_decoder_ridge_and_set_the_activations():
    from cfx.models.step import Batch
    from cfx.models.vae import ELBO, VAENet, _Forward

    net = VAENet(n_features=2, activations=("sigmoid", "tanh"))
    key = jax.random.key(0)
    params = net.init(key, jnp.zeros((1, 2)), key)
    batch = Batch(x=jnp.ones((4, 2)), y=jnp.zeros(4, jnp.int32), w=jnp.ones(4))
    plain, _ = ELBO(1.0)(params, batch, key, apply=_Forward(net), extra=None)
    ridge, _ = ELBO(1.0, 0.01)(params, batch, key, apply=_Forward(net), extra=None)
    inner = params["params"]
    sq = sum(float(jnp.sum(w**2)) for k in ("dec_0", "out") for w in jax.tree_util.tree_leaves(inner[k]))
    np.testing.assert_allclose(float(ridge) - float(plain), 0.01 * sq, rtol=1e-5)
    h = jax.nn.tanh(jnp.zeros((1, 2)) @ inner["dec_0"]["kernel"] + inner["dec_0"]["bias"])
    np.testing.assert_allclose(
        net.apply(params, jnp.zeros((1, 2)), method=VAENet.decode),
        h @ inner["out"]["kernel"] + inner["out"]["bias"],
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="activations"):
        cfx.models.fit_vae(np.zeros((4, 2), np.float32), activations=("relu", "nope"))
    g = cfx.generators.make("revise", vae_activations=["sigmoid", "tanh"])  # YAML lists become tuples
    assert g.vae_activations == ("sigmoid", "tanh")


def test_wachter_without_weights_is_the_plain_l1_of_ce_jl_for_one_counterfactual():
    data = cfx.data.load("linearly_separable", n=100, seed=0, centers=LS_CENTERS, std=0.1)
    x, x_cf = jnp.asarray(data.X[0]), jnp.asarray(data.X[0] + np.array([0.3, -0.2], np.float32))  # one row
    plain = cfx.generators.make("wachter", weights="none").fit(None, data, key=None).penalties()[0]
    mad = cfx.generators.make("wachter").fit(None, data, key=None).penalties()[0]
    np.testing.assert_allclose(float(plain.fn(x_cf, x, None)), 0.5, rtol=1e-5)
    m = np.median(np.abs(data.X - np.median(data.X, 0)), 0)
    np.testing.assert_allclose(float(mad.fn(x_cf, x, None)), 0.3 / m[0] + 0.2 / m[1], rtol=1e-4)
    assert 0.3 / m[0] + 0.2 / m[1] > 1.0  # 1/MAD ≈ 5 on the reference's LS: the weights matter
    with pytest.raises(ValueError, match="weights"):
        cfx.generators.make("wachter", weights="std")


def test_every_model_of_a_data_set_shares_one_50_50_conformal_split():
    """ConformalPrediction 0.1.12 splits with MLJBase ``partition(eachindex(y), 0.5)``: no rng, so no
    shuffle, and every model gets the same proper-training and calibration rows. Under the preset
    cfx draws one split per data set (shared by all models and, with runs_vary: factuals, all runs)."""
    from cfx.experiments.kinds.eccco.runner import check

    cfg = parse_config(
        {
            "kind": "eccco",
            "name": "t",
            "preset": "eccco-2024",
            "data": [{"name": "linearly_separable", "n": 80}],
            "runs": 2,
        }
    )
    assert cfg.calibration.share == 0.5
    splits = check(cfg)
    fit, cal, train, _ = splits[("linearly_separable", 0)]
    assert len(fit) == len(cal) == len(train) // 2
    rows = lambda d: {tuple(r) for r in np.asarray(d.X).round(6)}  # noqa: E731
    assert rows(fit).isdisjoint(rows(cal)) and rows(fit) | rows(cal) == rows(train)
    again = check(cfg)[("linearly_separable", 1)]  # a second run, and a second call: the same rows
    np.testing.assert_array_equal(again[0].X, fit.X)
    np.testing.assert_array_equal(again[1].X, cal.X)

"""preset ct-2026 (CounterfactualTraining.jl's semantics): its general options, the pooled evaluation,
the preset's merge and the bad inputs of issue 21. Small closed forms plus one smoke run."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

import cfx
from cfx.experiments.config import ConfigError
from cfx.generators import ECCo
from cfx.generators.eccco import polynomial_decay, polynomial_schedule
from cfx.training import CTConfig, fit_ct, search_constraints
from cfx.training.pool import PoolSpec, draw_individuals, draw_labels, draw_rounds, pooled_reduction, round_means

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _dataset(X, y):
    from cfx.data.dataset import Dataset, FeatureSchema

    return Dataset(X, y, FeatureSchema.default(X.shape[1]))


def test_polynomial_schedule_is_ce_jl_energy_constraint():
    s = polynomial_schedule(30)  # b = round(30/25) = 1, a = 0.1
    assert (s["decay_offset"], s["decay_scale"], s["decay_power"]) == (1.0, 0.1, 0.9)
    assert float(polynomial_decay(0, 0.1, 1.0, 0.9)) == pytest.approx(0.1 * 2**-0.9, rel=1e-6)
    assert float(polynomial_decay(29, 0.1, 1.0, 0.9)) == pytest.approx(0.1 * 31**-0.9, rel=1e-6)
    assert polynomial_schedule(50)["decay_offset"] == 2.0 and polynomial_schedule(10)["decay_scale"] == 0.0
    gen = ECCo(**s)
    assert gen.decay_schedule == "polynomial" and ECCo().decay_schedule == "exponential"  # default unchanged
    with pytest.raises(ValueError, match="decay_schedule"):
        ECCo(decay_schedule="linear")


def test_polynomial_energy_term_value():
    """The energy penalty with the polynomial schedule is φ_t·(E + r·E²) at the factual."""
    data = cfx.data.load("moons", n=40, seed=0)
    clf = cfx.models.fit(data, "linear", epochs=1, seed=0)
    x = np.asarray(data.X[:3])
    gen = ECCo(cost=0.0, energy=1.0, ridge=1e-3, yloss=None, **polynomial_schedule(30))
    res = cfx.generate(
        gen.replace(convergence="max_steps"), clf, x, 1, key=__import__("jax").random.key(0), max_steps=1
    )
    # after one step the reported term is at the final point x_1, step t = 1 (the search's counter)
    e = -np.asarray(clf.raw_logits(np.asarray(res.counterfactuals)[:, 0]))[:, 1]
    phi = 0.1 * (1.0 + 1 + 1) ** -0.9
    assert np.allclose(np.asarray(res.terms["energy"])[:, 0], phi * (e + 1e-3 * e**2), rtol=1e-4, atol=1e-6)


def test_ct_config_names_its_generator():
    assert CTConfig().generator == ECCo()  # cfx's default search: ECCo's defaults (exponential decay)
    gen = ECCo(convergence="max_steps", ridge=1e-3, **polynomial_schedule(30))
    assert CTConfig(generator=gen).generator is gen
    with pytest.raises(TypeError, match="CTConfig.generator must be a cfx generator"):
        CTConfig(generator="ecco")
    with pytest.raises(ValueError, match="CTConfig.generator: ECCCo needs"):
        CTConfig(generator=cfx.generators.ECCCo())
    data = cfx.data.load("moons", n=60, seed=0)  # any generator that needs nothing from the model is a search
    out = fit_ct(
        data, "mlp", ct=CTConfig(generator=cfx.generators.Generic(), n_ce=16, max_steps=3), epochs=1, widths=(4,)
    )
    assert out.info["n_ce"] == 16 and np.isfinite(out.history["loss"]).all()


def test_data_covering_box():
    """domain_covers_data: [min(μ − 2σ, min x), max(μ + 2σ, max x)] (sample σ), else μ ± 2σ."""
    X = np.array([[0.0, 0.0]] * 9 + [[10.0, 1.0]], np.float32)
    data = _dataset(X, np.array([0, 1] * 5, np.int32))
    mu, sd = X.mean(0), X.std(0, ddof=1)
    cov = search_constraints(data, CTConfig(domain_covers_data=True))
    assert np.allclose(cov.upper, np.maximum(mu + 2 * sd, X.max(0)), atol=1e-5)
    assert np.allclose(cov.lower, np.minimum(mu - 2 * sd, X.min(0)), atol=1e-5)
    assert cov.upper[0] == pytest.approx(10.0)  # the outlier lies outside μ + 2σ: the box holds it
    plain = search_constraints(data, CTConfig())
    assert np.allclose(plain.upper, X.mean(0) + 2 * X.std(0), atol=1e-5)
    # schema_constraints=False (the reference's search data): no one-hot groups, the box on every column
    import dataclasses

    onehot = dataclasses.replace(data, schema=dataclasses.replace(data.schema, categorical_groups=((0, 1),)))
    assert search_constraints(onehot, CTConfig()).categorical_groups
    ref = search_constraints(onehot, CTConfig(domain_covers_data=True, schema_constraints=False))
    assert not ref.categorical_groups and not ref.integer_features
    assert np.allclose(ref.upper, cov.upper, atol=1e-5) and np.allclose(ref.lower, cov.lower, atol=1e-5)
    with pytest.raises(TypeError, match="schema_constraints"):
        CTConfig(schema_constraints="no")
    fixed = search_constraints(data, CTConfig(domain=(-1, 1), schema_constraints=False))  # MNIST's [-1, 1]
    assert np.allclose(fixed.lower, -1.0) and np.allclose(fixed.upper, 1.0)
    with pytest.raises(ValueError, match="CTConfig.domain"):
        CTConfig(domain=(1.0, -1.0))


def test_pooled_reduction_closed_form():
    base, treated = np.full(10, 2.0), np.full(10, 1.0)
    red = pooled_reduction(base, treated)
    assert red["reduction"] == pytest.approx(50.0) and red["significant"] and red["se"] == pytest.approx(0.0)
    noisy = pooled_reduction(np.array([1.0, 2.0, 1.0, 2.0]), np.array([2.0, 1.0, 2.0, 1.0]))
    assert not noisy["significant"]
    # per round: mean over λ of the per-(λ, round) means of valid values
    v = np.array([[[1.0, 3.0], [np.nan, np.nan]], [[5.0, np.nan], [4.0, 4.0]]])
    assert np.allclose(round_means(v), [(2.0 + 5.0) / 2, 4.0])


def test_pooled_cost_weighs_settings_by_valid_counts():
    """The paper's cost column pools the mutability grid's settings row-wise (aggregate_ce_evaluation)."""
    from cfx.experiments.kinds.ct.reference import _mean_over_modes

    def cell(costs, valid):
        v = np.array(valid, bool)[None, None, :]
        return (
            {"accuracy": {"mean": 1.0}, "validity": {"mean": float(v.mean())}},
            {"round_cost": np.array([np.mean(costs)]), "lam_cost": np.array([[np.mean(costs)]]), "pool_valid": v},
        )

    _, arrays = _mean_over_modes([cell([1.0], [1, 0, 0, 0]), cell([3.0, 3.0, 3.0], [1, 1, 1, 0])])
    assert arrays["round_cost"][0] == pytest.approx((1.0 + 9.0) / 4)  # not (1 + 3) / 2


def test_paper_row_counts_runs_significant_on_their_own():
    """The paper's * is one model's 99 % interval; with several runs the row says in how many it holds."""
    from cfx.experiments.kinds.ct._tables import _row

    rng = np.random.default_rng(0)
    metrics = {"accuracy": {"mean": 1.0}, "validity": {"mean": 1.0}}
    run = lambda mean: (metrics, {"round_ip": mean + 0.01 * rng.normal(size=100)})
    base = [run(2.0), run(2.0), run(2.0)]
    treated = [run(1.0), run(2.0), run(1.5)]  # runs 1 and 3 lower IP clearly, run 2 not
    row = _row("d", "single", "ct", base, treated)
    assert row["ip_sig_runs"] == 2 and row["runs"] == 3
    assert not row["ip_sig"]  # over all runs' rounds the null run puts 0 inside the interval


def test_rounds_and_individuals():
    factual, target = draw_rounds(3, 50, seed=0)
    assert np.all(factual != target) and set(np.unique(target)) <= {0, 1, 2}
    pred = np.array([0, 0, 1, 1, 1])
    rows = draw_individuals(pred, np.array([1, 2, 0]), 4, seed=0)
    assert np.all(pred[rows[0]] == 1) and np.all(rows[1] == -1) and np.all(pred[rows[2]] == 0)
    # CE.jl's benchmark: each individual's (factual, target) drawn once, the same in every round
    factual, target = draw_labels(2, 250, seed=0)
    assert np.all(factual != target) and 0.4 < factual.mean() < 0.6
    rows = draw_individuals(pred, np.broadcast_to(factual, (7, 250)), None, seed=1)
    assert rows.shape == (7, 250) and np.all(pred[rows] == factual[None, :])
    with pytest.raises(ValueError, match="pairs"):
        PoolSpec(pairs="batch")


def test_pool_draws_per_energy():
    """draws: per_energy (the reference's one benchmark call per λ): each λ its own classes and rows;
    a shared draw gives every λ the same rows. Bad shapes name the argument."""
    import jax

    from cfx.training.pool import evaluate_pool

    data = cfx.data.load("moons", n=60, seed=0)
    clf = cfx.models.fit(data, "linear", epochs=1, seed=0)
    spec = PoolSpec(energies=(0.1, 1.0), rounds=3, n_individuals=5, max_steps=2, ip_samples=10, ip_star_size=4)
    gen = ECCo(cost=0.0, learning_rate=0.1, threshold=0.95)
    pred = np.asarray(clf.predict(np.asarray(data.X)))
    kw = dict(spec=spec, constraints=None, key=jax.random.key(0), seed=3)
    labels = [draw_labels(2, 5, seed=s) for s in (0, 1)]
    fac, tgt = np.stack([f for f, _ in labels]), np.stack([t for _, t in labels])
    out = evaluate_pool(clf, data, gen, factual=fac, target=tgt, **kw)
    assert out["rows"].shape == (2, 3, 5) and out["ip"].shape == (2, 3, 5)
    for e in range(2):
        ok = out["rows"][e] >= 0
        assert np.all(pred[out["rows"][e][ok]] == np.broadcast_to(fac[e], (3, 5))[ok])
    assert not np.array_equal(out["rows"][0], out["rows"][1])
    shared = evaluate_pool(clf, data, gen, factual=fac[0], target=tgt[0], **kw)
    assert shared["rows"].shape == (3, 5)
    with pytest.raises(ValueError, match="factual"):
        evaluate_pool(clf, data, gen, factual=np.stack([fac[0]] * 3), target=np.stack([tgt[0]] * 3), **kw)


def test_pooled_divergence_groups_over_rounds():
    """divergence: pooled (CE.jl's compute_divergence): one MMD² per (factual, target) over every round's
    counterfactuals, valid or not; a round's value is the mean of its valid rows' group values."""
    from cfx.training.evaluation import mmd2
    from cfx.training.pool import _pooled_divergence

    rng = np.random.default_rng(0)
    J, n = 4, 6
    fac = np.tile([0, 0, 0, 1, 1, 1], J)
    tgt = 1 - fac
    cf = rng.normal(size=(J * n, 2)).astype(np.float32)
    X = rng.normal(size=(30, 2)).astype(np.float32)
    y = np.array([0] * 15 + [1] * 15)
    valid = np.ones(J * n, bool)
    valid[[0, 1, 2]] = False  # round 0: only the (1 -> 0) rows are valid
    out = _pooled_divergence(cf, valid, np.ones(J * n, bool), fac, tgt, X, y, J, n, size=100, ls=1.0, seed=0)
    g = [max(float(mmd2(cf[fac == f], X[y == 1 - f], np.ones(12), np.ones(15), 1.0)), 0.0) for f in (0, 1)]
    assert out[0] == pytest.approx(g[1], rel=1e-5)  # the invalid rows still entered group (0 -> 1)'s MMD²
    assert np.allclose(out[1:], (g[0] + g[1]) / 2, rtol=1e-5)
    with pytest.raises(ValueError, match="divergence"):
        PoolSpec(divergence="batch")


def test_reference_blob_centres_are_julias_draw():
    """TaijaData's LS / overlapping centres: MLJBase.make_blobs' first draw from Xoshiro(42)."""
    from cfx.experiments.kinds.ct.reference import REFERENCE_CENTRES, SYNTHETIC_OPTIONS, julia_blob_centres

    c = julia_blob_centres(42)
    assert np.allclose(c, REFERENCE_CENTRES, atol=1e-12)
    assert np.linalg.norm(c[0] - c[1]) == pytest.approx(5.7617, abs=1e-4)
    # Julia: rand(Xoshiro(42)) == 0.6293451231426089, the first uniform (centre 0's x1 = 20u − 10)
    assert (c[0, 0] + 10) / 20 == pytest.approx(0.6293451231426089, abs=1e-15)
    for name in ("linearly_separable", "overlapping"):
        assert SYNTHETIC_OPTIONS[name]["centers"] == [list(x) for x in REFERENCE_CENTRES]


def test_n_ce_capped_at_the_smallest_class_share(caplog):
    X = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    y = np.array([0] * 34 + [1] * 6, np.int32)
    with caplog.at_level(logging.WARNING, logger="cfx.training"), pytest.warns(UserWarning, match="smallest class"):
        out = fit_ct(_dataset(X, y), "mlp", ct=CTConfig(n_ce=30, max_steps=2), epochs=1, widths=(4,))
    assert out.info["n_ce"] == 12 and out.info["n_ce_capped"]
    assert any("smallest class" in r.getMessage() for r in caplog.records)


def _raw(text: str, tmp_path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_unknown_preset_lists_the_presets(tmp_path):
    from cfx.experiments import load_config

    with pytest.raises(ConfigError, match=r"unknown preset 'ct-2025'.*ct-2026, ct-2026-final-run"):
        load_config(_raw("kind: ct\nname: x\npreset: ct-2025\ndata: [moons]\n", tmp_path))


def test_preset_fills_reference_values_and_refuses_conflicts(tmp_path):
    from cfx.experiments import load_config

    cfg = load_config(
        _raw("kind: ct\nname: x\npreset: ct-2026\ndata: [moons, {name: circles, threshold: 0.7}]\n", tmp_path)
    )
    moons, circles = cfg.data
    # the paper's table's grids (output/satml): mutability grid moons τ 0.9, λ_reg 0.25, λ_adv 0.25, τ_eval 0.5
    assert (moons.threshold, moons.lambda_reg, moons.lambda_adv, moons.batch_size, moons.n, moons.eval_threshold) == (
        0.9,
        0.25,
        0.25,
        30,
        3900,
        0.5,
    )
    assert circles.threshold == 0.7 and circles.lambda_reg == 0.5  # the config's own value wins where unset
    # mode single: the reference's all-mutable grid (the paper's IP/IP*) trains with its own τ, λ_reg, λ_adv
    from cfx.experiments.kinds.ct import _ct_config

    ls = load_config(
        _raw("kind: ct\nname: x\npreset: ct-2026\ndata: [{name: linearly_separable, lambda_adv: 0.0}]\n", tmp_path)
    ).data[0]  # λ_adv 0: the recorded grid_config's mutability grid
    assert ls.single == {
        "threshold": 0.5,
        "lambda_reg": 0.01,
        "lambda_adv": 0.25,
        "eval_threshold": 0.95,
        "eval_max_steps": 50,
    }
    single, mut = (_ct_config(cfg, ls, "ct", m, 0) for m in ("single", "protected"))
    assert (single.generator.threshold, single.lambda_reg, single.lambda_adv, single.protected) == (0.5, 0.01, 0.25, ())
    assert (mut.generator.threshold, mut.lambda_reg, mut.lambda_adv, mut.protected) == (0.5, 0.01, 0.0, (0,))
    assert mut.weights()[3] == 0.0 and single.weights()[3] == 0.25  # the loss sees the mode's λ_adv
    # the earlier final_run grids stay available as their own preset
    old = load_config(
        _raw("kind: ct\nname: x\npreset: ct-2026-final-run\ndata: [linearly_separable]\n", tmp_path)
    ).data[0]
    assert (old.threshold, old.lambda_reg, old.lambda_adv, old.eval_threshold) == (0.9, 0.5, 0.25, 0.95)
    assert old.single["lambda_reg"] == 0.25 and old.single["eval_max_steps"] == 100
    # TaijaData's California is CE.jl's artifact: scikit-learn's features, classes balanced
    cal = load_config(_raw("kind: ct\nname: x\npreset: ct-2026\ndata: [california_sklearn]\n", tmp_path)).data[0]
    assert cal.balance and (cal.threshold, cal.lambda_reg, cal.eval_threshold, cal.batch_size) == (0.5, 0.25, 0.5, 1000)
    with pytest.raises(ConfigError, match="single"):
        load_config(_raw("kind: ct\nname: x\npreset: ct-2026\ndata: [{name: moons, single: {tau: 0.5}}]\n", tmp_path))
    assert cfg.model.widths == (32,) and cfg.model.epochs == 100 and cfg.ct.energy_decay == "polynomial"
    assert cfg.ct.domain_covers_data and cfg.evaluation.protocol == "pool" and cfg.evaluation.length_scale == 5.0
    assert cfg.evaluation.draws == "per_energy"  # one benchmark per energy weight, as the reference
    with pytest.raises(ConfigError, match="ct.energy_decay"):
        load_config(
            _raw("kind: ct\nname: x\npreset: ct-2026\ndata: [moons]\nct: {energy_decay: exponential}\n", tmp_path)
        )


def test_protected_name_must_exist_under_the_preset():
    from cfx.experiments import load_config
    from cfx.experiments.kinds import get_kind

    cfg = load_config(CONFIGS / "ct_paper_smoke.yaml", ["data[0].protected=age"])
    with pytest.raises(ConfigError, match=r"protected feature 'age' not found; features: x1, x2") as err:
        get_kind("ct").check(cfg)
    assert "data[0].protected" in str(err.value)  # the error names the key


def test_paper_smoke_end_to_end(tmp_path):
    from cfx.experiments import run

    report = run(CONFIGS / "ct_paper_smoke.yaml", out=tmp_path / "out")
    red = report.tables["reduction"]
    assert list(red["variant"]) == ["ct", "ct"] and list(red["mode"]) == ["single", "all"]
    assert np.isfinite(red["ip_reduction"]).all()
    assert "paper" in report.summary and "19.59*" in report.summary  # moons beside the paper's number
    assert any(p.name == "moons_energy.png" for p in report.figures)


def test_protected_feature_modes(tmp_path):
    """modes: protected-<feature> (a name or an index) makes that feature immutable; unknown ones are refused."""
    from cfx.experiments import load_config
    from cfx.experiments.kinds import get_kind

    cfg = load_config(CONFIGS / "ct_paper_smoke.yaml", ["modes=[all, protected-1, protected-x1]"])
    splits = get_kind("ct").check(cfg)
    assert splits[("moons", 0, "protected-1")] == 1 and splits[("moons", 0, "protected-x1")] == 0
    with pytest.raises(ConfigError, match="modes"):
        load_config(CONFIGS / "ct_paper_smoke.yaml", ["modes=[all, fixed]"])
    with pytest.raises(ConfigError, match="protected feature 'x9' not found"):
        get_kind("ct").check(load_config(CONFIGS / "ct_paper_smoke.yaml", ["modes=[protected-x9]"]))
    # a list of features (the reference's MNIST rows): all of them immutable in the protected mode
    from cfx.experiments.kinds.ct import _ct_config

    cfg = load_config(CONFIGS / "ct_paper_smoke.yaml", ["data[0].protected=[0, x2]"])
    assert get_kind("ct").check(cfg)[("moons", 0)][2] == (0, 1)
    assert _ct_config(cfg, cfg.data[0], "ct", "protected", (0, 1)).protected == (0, 1)
    assert _ct_config(cfg, cfg.data[0], "ct", "single", (0, 1)).protected == ()
    with pytest.raises(ConfigError, match="protected feature 'x9' not found"):
        get_kind("ct").check(load_config(CONFIGS / "ct_paper_smoke.yaml", ["data[0].protected=[0, x9]"]))

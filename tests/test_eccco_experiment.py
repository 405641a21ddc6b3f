"""The ``eccco`` experiment kind: configs/eccco_smoke.yaml end to end, resume, config errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cfx.experiments import ConfigError, load_config, parse_config, run

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("eccco_smoke")
    return run(CONFIGS / "eccco_smoke.yaml", out=out, progress=False), out


def test_smoke_run_reports_every_generator_with_finite_unfaithfulness_and_the_figure(smoke):
    report, out = smoke
    cfg = load_config(CONFIGS / "eccco_smoke.yaml")
    summary = report.tables["summary"]
    for metric in (
        "unfaithfulness",
        "unfaithfulness_ref",
        "implausibility",
        "implausibility_ssim",
        "validity",
        "l1",
        "set_size",
    ):
        rows = summary[summary["metric"] == metric]
        assert set(rows["generator"]) == {g.key for g in cfg.generators}, metric
        assert np.all(np.isfinite(rows["mean"])), metric
    u = summary[summary["metric"] == "unfaithfulness"].set_index("generator")["mean"]
    ref = summary[summary["metric"] == "unfaithfulness_ref"].set_index("generator")["mean"]
    share = cfg.sampling.keep / cfg.sampling.n_chains
    np.testing.assert_allclose(ref[u.index], u * share, rtol=1e-12)
    ssim = summary[summary["metric"] == "implausibility_ssim"]["mean"]
    assert np.all((ssim >= 0) & (ssim <= 1))
    png = out / "figures" / "digits_9_to_7.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "unfaithfulness" in report.summary and "eccco_l1" in report.summary
    models = pd.read_csv(out / "models.csv")
    assert models["samples_finite"].all() and (models["q_hat"] > 0).all()


def test_resume_reports_the_same_table_without_retraining(smoke):
    report, out = smoke
    again = run(CONFIGS / "eccco_smoke.yaml", out=out, resume=True, progress=False)
    pd.testing.assert_frame_equal(again.tables["results"], report.tables["results"])


def test_the_paper_config_parses_and_round_trips():
    cfg = load_config(CONFIGS / "eccco.yaml")
    assert [d.name for d in cfg.data] == [
        "linearly_separable",
        "moons",
        "circles",
        "digits",
        "mnist",
        "gmsc",
        "california",
    ]
    assert [m.name for m in cfg.models] == ["mlp", "ensemble", "jem", "jem_ensemble"]
    assert {g.name for g in cfg.generators} == {
        "wachter",
        "greedy",
        "revise",
        "eccco",
        "eccco_no_conformal",
        "eccco_no_energy",
        "eccco_plus",
        "eccco_l1",
    }
    assert (cfg.sampling.n_chains, cfg.sampling.steps, cfg.sampling.keep) == (50, 500, 25)
    assert parse_config(cfg.to_dict(), name=cfg.name) == cfg


@pytest.mark.parametrize(
    "change, path, words",
    [
        ({"sampling": {"chains": 5}}, "sampling.chains", "n_chains"),
        ({"models": [{"name": "jemm"}]}, "models[0].name", "did you mean 'jem'"),
        ({"generators": [{"name": "eccco", "energie": 0.1}]}, "generators[0].energie", "energy"),
        ({"data": [{"name": "moons", "generators": {"ecco": {"energy": 0.1}}}]}, "data[0].generators.ecco", "eccco"),
        (
            {"data": [{"name": "moons", "models": {"jem": {"sgld_step": 3}}}]},
            "data[0].models.jem.sgld_step",
            "sgld_steps",
        ),
        ({"sampling": {"keep": 60}}, "sampling.keep", "n_chains"),
    ],
)
def test_bad_configs_name_the_key(change, path, words):
    raw = {
        "kind": "eccco",
        "name": "x",
        "data": [{"name": "moons"}],
        "models": [{"name": "jem"}],
        "generators": [{"name": "eccco"}],
        **change,
    }
    with pytest.raises(ConfigError) as e:
        parse_config(raw)
    assert e.value.path == path and words in str(e.value)

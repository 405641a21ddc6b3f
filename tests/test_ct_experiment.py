"""The ``ct`` experiment kind: configs/ct_smoke.yaml end to end in a tmp dir, resume, bad configs."""

from __future__ import annotations

import warnings
from pathlib import Path

import flax.serialization
import numpy as np
import pandas as pd
import pytest

import cfx.data
import cfx.experiments
import cfx.models
import cfx.training
from cfx.experiments import ConfigError, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_ct_smoke_end_to_end_and_resume(tmp_path):
    out = tmp_path / "ct"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = cfx.experiments.run(CONFIGS / "ct_smoke.yaml", out=out, progress=False)
    red = pd.read_csv(out / "reduction.csv")
    assert list(red["mode"]) == ["all", "protected"] and set(red["variant"]) == {"ct"}
    assert np.all(np.isfinite(red["accuracy"])) and np.all(np.isfinite(red["accuracy_baseline"]))
    assert "IP red. %" in report.summary and (out / "summary.md").exists()
    assert {p.name for p in report.figures} == {"moons_robust.png", "moons_2d.png"}
    results = pd.read_csv(out / "results.csv")
    assert {"ip", "ip_star", "validity", "cost", "sensitivity", "pgd_0.1", "fgsm_0.1"} <= set(results["metric"])
    store = cfx.experiments.Store(out)
    rec = store.load(("cells", "moons", "ct", "protected", "run000"))
    assert rec["info"]["immutable"] == [0] and rec["protected"] == "x1"
    assert rec["info"]["n_ce"] == 80 and rec["info"]["n_ce_capped"]  # n_ce: 1000 > 80 training rows
    # the fitted parameters are saved with the results and load back into the model
    train, _ = cfx.data.train_test(cfx.data.load("moons", n=100))
    clf = cfx.models.init(train, "mlp", widths=(8,))
    params = flax.serialization.from_bytes(clf.params, store.load_blob(("cells", "moons", "ct", "all", "run000")))
    assert np.asarray(clf.replace(params).predict(train.X[:3])).shape == (3,)
    # a second run of the finished experiment rebuilds the report from the saved records only
    mtime = store.file(("cells", "moons", "ct", "all", "run000"), ".json").stat().st_mtime_ns
    again = cfx.experiments.run(CONFIGS / "ct_smoke.yaml", out=out, progress=False, resume=True)
    assert again.summary == report.summary
    assert store.file(("cells", "moons", "ct", "all", "run000"), ".json").stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    "override, match",
    [
        ("variants=[ct]", "must include 'baseline'"),
        ("variants=[baseline, fancy]", r"variants\[1\]"),
        ("modes=[sometimes]", r"modes\[0\]"),
        ("ct.lambda_div=-1", "lambda_div"),
        ("ct.nce=10", "nce"),
        ("data[0].noisy=0.1", "noisy"),
        ("evaluation.divergence=batch", "evaluation.divergence"),
        ("ct.schema_constraints=maybe", "schema_constraints"),
        ("data[0].domain=[1, -1]", "domain"),
        ("ct.generator.name=eccco", r"ct.generator.name: counterfactual training searches with ECCo"),
        ("ct.generator.name=ecoo", r"ct.generator.name: unknown generator 'ecoo'"),
        (
            "ct.generator.decay_rate=0.2",
            r"ct.generator.decay_rate: decay_rate is an ECCo option CT's search does not set",
        ),
        ("ct.generator.convergence=decision_threshold", r"ct.generator.convergence"),
    ],
)
def test_bad_ct_configs_name_the_key(override, match):
    with pytest.raises((ConfigError, TypeError), match=match):
        cfg = load_config(CONFIGS / "ct_smoke.yaml", [override])
        cfx.experiments.get_kind("ct").check(cfg)


def test_ct_names_its_generator_and_the_flat_keys_still_work_with_a_warning():
    """``ct.generator: {name: ecco, ...}`` builds CTConfig's search generator; the flat keys (before 0.2)
    move there with a DeprecationWarning and give the same CTConfig; both forms at odds: an error."""
    from cfx.experiments.kinds.ct import _ct_config

    new = load_config(
        CONFIGS / "ct_smoke.yaml",
        [
            "ct.generator={name: ecco, cost: 0.01, convergence: max_steps, "
            "decay_schedule: polynomial, learning_rate: 0.1}"
        ],
    )
    with pytest.warns(DeprecationWarning, match=r"ct.cost, ct.stop.*ct.generator.cost, ct.generator.convergence"):
        old = load_config(
            CONFIGS / "ct_smoke.yaml",
            ["ct.cost=0.01", "ct.stop=max_steps", "ct.energy_decay=polynomial", "ct.learning_rate=0.1"],
        )
    assert old == new and new.ct.cost == new.ct.generator.cost == 0.01  # CTConfig's names read the generator's
    built = _ct_config(new, new.data[0], "ct", "all", 0).generator  # CTConfig names its search generator
    schedule = cfx.generators.eccco.polynomial_schedule(new.ct.max_steps)  # CE.jl's, for T = max_steps
    assert built == cfx.generators.ECCo(cost=0.01, convergence="max_steps", learning_rate=0.1, **schedule)
    default = load_config(CONFIGS / "ct_smoke.yaml")
    assert _ct_config(default, default.data[0], "ct", "protected", 0).replace(max_steps=30, protected=()) == (
        cfx.training.CTConfig()
    )  # the defaults are CTConfig's
    assert type(new).parse(cfx.experiments.config.RawConfig(new.to_dict())) == new  # no flat keys written back
    with pytest.raises(ConfigError, match=r"ct.cost \(deprecated\) is 0.5 but ct.generator.cost is 0.01"):
        load_config(CONFIGS / "ct_smoke.yaml", ["ct.generator.cost=0.01", "ct.cost=0.5"])


def test_protected_feature_must_exist():
    cfg = load_config(CONFIGS / "ct_smoke.yaml", ["data[0].protected=age"])
    with pytest.raises(ConfigError, match="protected feature 'age' not found"):
        cfx.experiments.get_kind("ct").check(cfg)

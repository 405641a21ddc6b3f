"""Experiment configs, the benchmark kind and the results folder (resume, refuse-to-overwrite).

One small grid (configs/quickstart_smoke.yaml with 2 runs: cats_dogs, a tiny MLP, generic +
wachter + dice, 8 factuals, 10 steps) is run once per module and shared.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pydantic
import pytest
import yaml

import cfx.models
import cfx.search
from cfx import experiments
from cfx.experiments import ConfigError, OutputExistsError, Store, load_config, parse_config, store, tables
from cfx.experiments.kinds import benchmark
from cfx.experiments.kinds.benchmark import BenchmarkConfig
from cfx.experiments.kinds.benchmark import runner as benchmark_runner

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
SMOKE = CONFIGS / "quickstart_smoke.yaml"
SMOKE_SET = ["runs=2"]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


BASE = """
name: t
data: {name: moons, n: 100}
models: [{name: mlp, epochs: 2, widths: [4]}]
generators: [generic, {name: wachter, cost: 0.2}]
search: {max_steps: 5}
n_factuals: 4
"""


@pytest.fixture
def base_file(tmp_path):
    return write(tmp_path / "base.yaml", BASE)


def error_of(fn, *args, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, ValueError)
    return info.value


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------


def test_quickstart_parses_into_typed_frozen_config():
    cfg = load_config(CONFIGS / "quickstart.yaml")
    assert isinstance(cfg, BenchmarkConfig) and cfg.name == "quickstart" and cfg.kind == "benchmark"
    assert cfg.data[0].name == "cats_dogs" and cfg.data[0].n == 1500
    assert cfg.models[0].widths == (32, 32) and isinstance(cfg.models[0].learning_rate, float)
    assert [g.key for g in cfg.generators] == ["generic", "wachter", "dice"]
    assert cfg.generators[2].hyperparams == {"cost": 0.1, "diversity": 0.1, "num_counterfactuals": 3}
    assert cfg.search.max_steps == 100 and cfg.n_factuals == 100
    with pytest.raises(pydantic.ValidationError):
        cfg.seed = 3  # type: ignore[misc]
    assert cfg.output_dir == Path("results") / "quickstart"
    assert cfg.source == str(CONFIGS / "quickstart.yaml")


@pytest.mark.parametrize("name", ["quickstart.yaml", "quickstart_smoke.yaml", "benchmark.yaml", "benchmark_smoke.yaml"])
def test_every_shipped_config_is_valid_and_round_trips(name):
    cfg = load_config(CONFIGS / name)
    assert parse_config(cfg.to_dict(), name=cfg.name) == cfg
    assert parse_config(yaml.safe_load(cfg.dump())) == cfg


def test_kind_defaults_to_benchmark_and_unknown_kinds_are_named(tmp_path, base_file):
    assert load_config(base_file).kind == "benchmark"  # BASE has no kind: key
    e = error_of(load_config, base_file, ["kind=benchmrk"])
    assert e.path == "kind" and "did you mean 'benchmark'" in str(e) and "available: benchmark" in str(e)
    assert "experiment kind" in str(error_of(load_config, base_file, ["kind=3"]))


def test_benchmark_config_covers_the_whole_generator_registry():
    import cfx.generators

    cfg = load_config(CONFIGS / "benchmark.yaml")
    assert {g.name for g in cfg.generators} == set(cfx.generators.REGISTRY)  # every registered generator
    assert [d.name for d in cfg.data] == ["moons", "gmsc", "digits"]
    assert [m.name for m in cfg.models] == ["mlp", "ensemble"]


def test_shorthand_forms_and_yaml_exponent_strings(tmp_path):
    f = write(
        tmp_path / "c.yaml",
        "name: s\ndata: moons\nmodels: mlp\ngenerators: generic\nmodels: [{name: mlp, learning_rate: 1e-3}]\n",
    )
    cfg = load_config(f)
    assert cfg.data[0].name == "moons" and cfg.generators[0].name == "generic"
    assert cfg.models[0].learning_rate == pytest.approx(1e-3)  # YAML 1.1 reads 1e-3 as a string


def test_unknown_generator_hyperparameter_names_path_and_suggests(base_file):
    e = error_of(load_config, base_file, ["generators[1].lamda=0.1"])
    assert e.path == "generators[1].lamda" and str(base_file) in str(e)
    assert "did you mean 'cost'" in str(e) and "allowed" in str(e)


def test_typo_in_file_is_reported_with_file_and_suggestion(tmp_path):
    f = write(tmp_path / "typo.yaml", BASE + "seeed: 3\n")
    e = error_of(load_config, f)
    assert e.file == str(f) and e.path == "seeed" and "did you mean 'seed'" in str(e)
    f = write(tmp_path / "typo2.yaml", BASE.replace("search: {max_steps: 5}", "search: {max_step: 5}"))
    assert "did you mean 'max_steps'" in str(error_of(load_config, f))


@pytest.mark.parametrize(
    "override, path, words",
    [
        ("n_factuals=ten", "n_factuals", "expected an integer"),
        ("runs=true", "runs", "expected an integer"),
        ("data[0].n=1.5", "data[0].n", "expected an integer"),
        ("models[0].widths=4", "models[0].widths", "list of int"),
        ("figures=1", "figures", "true or false"),
        ("generators[0].cost=abc", "generators[0].cost", "expected a number"),
        ("generators[0].distance=3", "generators[0].distance", "expected a string"),
    ],
)
def test_wrong_types(base_file, override, path, words):
    e = error_of(load_config, base_file, [override])
    assert e.path == path and words in str(e) and "--set" in str(e)


@pytest.mark.parametrize(
    "override, path, words",
    [
        ("search.max_steps=0", "search.max_steps", "> 0"),
        ("generators[0].threshold=1.5", "generators[0].threshold", "(0, 1]"),
        ("data[0].test_size=1.0", "data[0].test_size", "(0, 1)"),
        ("models[0].epochs=-1", "models[0].epochs", "> 0"),
        ("seed=-1", "seed", ">= 0"),
        ("generators[0].start=nois", "generators[0].start", "'identity', 'noise'"),
        ("generators[1].convergence=thresh", "generators[1].convergence", "did you mean 'threshold'"),
        ("generators[1].num_counterfactuals=0", "generators[1].num_counterfactuals", "> 0"),
        ("models[0].widths=[4, 0]", "models[0].widths", ">= 1"),
    ],
)
def test_out_of_range_values(base_file, override, path, words):
    e = error_of(load_config, base_file, [override])
    assert e.path == path and words in str(e)


@pytest.mark.parametrize(
    "override, path, words",
    [
        ("generators[0].name=wachtr", "generators[0].name", "did you mean 'wachter'"),
        ("models[0].name=mpl", "models[0].name", "did you mean 'mlp'"),
        ("data[0].name=moon", "data[0].name", "did you mean 'moons'"),
        ("metrics=[validty]", "metrics[0]", "did you mean 'validity'"),
        ("models[0].activaton=relu", "models[0].activaton", "did you mean 'activation'"),
        ("data[0].nois=0.3", "data[0].nois", "did you mean 'noise'"),
        ("models[0].seed=3", "models[0].seed", "unknown model option"),
    ],
)
def test_unknown_names_and_options(base_file, override, path, words):
    e = error_of(load_config, base_file, [override])
    assert e.path == path and words in str(e)


@pytest.mark.parametrize(
    "override, path",
    [
        ("search.threshold=0.9", "search.threshold"),
        ("search.num_counterfactuals=3", "search.num_counterfactuals"),
        ("generators[1].search={num_counterfactuals: 3}", "generators[1].search"),
    ],
)
def test_search_options_live_on_the_generator(base_file, override, path):
    """The experiment's search section keeps only call options; the rest is a generator key."""
    e = error_of(load_config, base_file, [override])
    assert e.path == path and "generator" in str(e)
    cfg = load_config(base_file, ["generators[1].num_counterfactuals=3", "generators[0].threshold=0.9"])
    assert cfg.generators[1].hyperparams == {"cost": 0.2, "num_counterfactuals": 3}
    assert cfg.generators[0].hyperparams == {"threshold": 0.9}


def test_missing_and_duplicate_sections(tmp_path):
    e = error_of(load_config, write(tmp_path / "a.yaml", "name: a\ndata: moons\nmodels: mlp\n"))
    assert e.path == "generators" and "missing" in str(e)
    e = error_of(load_config, write(tmp_path / "b.yaml", "data: moons\nmodels: mlp\ngenerators: [generic, generic]\n"))
    assert e.path == "generators[1]" and "label" in str(e)
    e = error_of(load_config, write(tmp_path / "c.yaml", "- a\n- b\n"))
    assert "mapping" in str(e)


def test_extends_deep_merges_child_wins_and_set_overrides(tmp_path, base_file):
    (tmp_path / "sub").mkdir()
    child = write(
        tmp_path / "sub" / "child.yaml",
        "extends: ../base.yaml\nname: child\nsearch: {batch_size: 7}\ngenerators: [dice]\n",
    )
    cfg = load_config(child)
    assert cfg.name == "child" and cfg.search.batch_size == 7
    assert cfg.search.max_steps == 5  # kept from the parent: mappings merge
    assert [g.name for g in cfg.generators] == ["dice"]  # lists are replaced
    assert cfg.data[0].n == 100
    cfg = load_config(
        child,
        [
            "search.max_steps=7",
            "generators=[generic, {name: greedy, max_changes: 3}]",
            "generators[0].cost=0.5",
            "models.0.epochs=9",
        ],
    )
    assert cfg.search.max_steps == 7 and cfg.models[0].epochs == 9
    assert cfg.generators[0].hyperparams == {"cost": 0.5} and cfg.generators[1].hyperparams == {"max_changes": 3}


def test_bad_extends(tmp_path):
    e = error_of(load_config, write(tmp_path / "m.yaml", "extends: nowhere.yaml\n" + BASE))
    assert e.path == "extends" and "nowhere.yaml" in str(e) and e.file == str(tmp_path / "m.yaml")
    write(tmp_path / "x.yaml", "extends: y.yaml\n")
    write(tmp_path / "y.yaml", "extends: x.yaml\n")
    assert "cycle" in str(error_of(load_config, tmp_path / "x.yaml"))
    assert "relative path" in str(error_of(load_config, write(tmp_path / "n.yaml", "extends: 3\n")))
    assert "not valid YAML" in str(error_of(load_config, write(tmp_path / "bad.yaml", "a: [1, 2\n")))


def test_bad_set_syntax(base_file):
    assert "key=value" in str(error_of(load_config, base_file, ["seed"]))
    assert "out of range" in str(error_of(load_config, base_file, ["generators[5].cost=1"]))
    assert "extends" in str(error_of(load_config, base_file, ["extends=x.yaml"]))


def test_identity_ignores_locations_only(base_file):
    a = load_config(base_file, output="x", data_dir="/d1")
    b = load_config(base_file, output="y", data_dir="/d2")
    assert a.data[0].data_dir == "/d1" and a.output == "x" and a.source == str(base_file)
    assert a.identity() == b.identity()
    assert a.identity() != load_config(base_file, ["seed=1"]).identity()


# --------------------------------------------------------------------------------------
# Small pieces of the grid and the folder
# --------------------------------------------------------------------------------------


def test_pooled_mean_sd_equals_concatenation():
    rng = np.random.default_rng(0)
    groups = [rng.normal(size=n) for n in (3, 7, 1, 12)]
    mean, sd, n = tables.pooled(
        [g.mean() for g in groups],
        [g.std(ddof=1) if len(g) > 1 else math.nan for g in groups],
        [len(g) for g in groups],
    )
    allv = np.concatenate(groups)
    assert n == len(allv) and mean == pytest.approx(allv.mean()) and sd == pytest.approx(allv.std(ddof=1))


def test_select_factuals_binary_and_multiclass(linear_classifier):
    import jax.numpy as jnp

    from cfx.classifier import Classifier
    from cfx.data import Dataset, FeatureSchema

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 2, size=(200, 2)).astype(np.float32)
    test = Dataset(X, np.zeros(200, np.int32), FeatureSchema.default(2), name="t")
    x, t, idx = benchmark.select_factuals(linear_classifier, test, 30, seed=1)
    assert x.shape == (30, 2) and np.all(t == 1) and len(set(idx.tolist())) == 30
    assert np.all(np.asarray(linear_classifier.predict(x)) == 0)
    x2, _, _ = benchmark.select_factuals(linear_classifier, test, 30, seed=1)
    np.testing.assert_array_equal(x, x2)  # seeded

    W = jnp.array([[1.0, 0.0, -1.0], [0.0, 1.0, -1.0]])
    three = Classifier(lambda p, z: z @ p, W, n_features=2)
    x, t, _ = benchmark.select_factuals(three, test, 50, seed=2)
    pred = np.asarray(three.predict(x))
    assert np.all(t != pred) and np.all((t >= 0) & (t < 3)) and len(np.unique(t)) > 1


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    store.write_json(target, {"a": 1})

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(store.os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        store.write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


def test_claim_refuses_foreign_folders_even_with_force(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(OutputExistsError, match="not written by cfx"):
        Store(tmp_path).claim("x: 1\n", {"x": 1}, lambda p: {}, resume=False, force=True)
    assert (tmp_path / "mine.txt").read_text() == "precious"


# --------------------------------------------------------------------------------------
# End to end: run, interrupt, resume, refuse
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_cfg():
    return load_config(SMOKE, SMOKE_SET)


@pytest.fixture(scope="module")
def full_run(smoke_cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "res"
    return experiments.run(smoke_cfg, out=out, progress=False)


def _cells(cfg):
    return [
        ("cells", d.key, m.key, g.key, f"run{r:03d}")
        for d in cfg.data
        for r in range(cfg.runs)
        for m in cfg.models
        for g in cfg.generators
    ]


def test_smoke_run_writes_every_file(full_run, smoke_cfg):
    import flax.serialization

    out = full_run.out_dir
    for name in (
        "config.yaml",
        "environment.json",
        "results.csv",
        "summary.md",
        "summary.csv",
        "timings.csv",
        store.MARKER,
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert load_config(out / "config.yaml") == smoke_cfg.replace(output=str(out))  # the resolved config loads back
    env = json.loads((out / "environment.json").read_text())
    for key in ("cfx", "jax", "backend", "devices", "python", "platform"):
        assert env[key]
    for r in range(2):
        base = out / "models" / "cats_dogs" / "mlp" / f"run{r:03d}"
        raw = (base.with_suffix(".msgpack")).read_bytes()
        assert isinstance(flax.serialization.msgpack_restore(raw), dict)
        assert json.loads(base.with_suffix(".json").read_text())["test_accuracy"] > 0.5
    st = Store(out)
    assert st.records(("cells",)) == sorted(_cells(smoke_cfg))
    arr = st.load_arrays(("cells", "cats_dogs", "mlp", "dice", "run000"))
    n = arr["factuals"].shape[0]
    assert n == smoke_cfg.n_factuals and arr["counterfactuals"].shape == (n, 3, 2)
    assert arr["path"].shape == (n, 3, smoke_cfg.search.max_steps + 1, 2)
    np.testing.assert_array_equal(arr["target"], 1)
    rec = st.load(("cells", "cats_dogs", "mlp", "dice", "run000"))
    assert rec["settings"]["num_counterfactuals"] == 3 and rec["search"]["max_steps"] == smoke_cfg.search.max_steps
    table = pd.read_csv(out / "results.csv")
    assert list(table.columns) == ["dataset", "model", "generator", "run", "metric", "value", "sd", "n"]
    assert set(table["metric"]) == set(smoke_cfg.metrics)
    assert len(table) == len(_cells(smoke_cfg)) * len(smoke_cfg.metrics)
    assert table[table.metric == "violations"]["value"].eq(0).all()
    md = (out / "summary.md").read_text()
    assert md == full_run.summary and all(g in md for g in ("generic", "wachter", "dice")) and " ± " in md
    figs = {p.name for p in (out / "figures").iterdir()}
    assert figs == {"cats_dogs_mlp_2d.png", "cats_dogs_benchmark.png"}
    for f in full_run.figures:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.rglob("*.tmp"))


def test_summary_pools_runs_exactly(full_run):
    t = full_run.table
    row = t[(t.generator == "generic") & (t.metric == "l1")]
    s = full_run.summary_table
    pooled_row = s[(s.generator == "generic") & (s.metric == "l1")].iloc[0]
    assert pooled_row["runs"] == 2 and pooled_row["n"] == row["n"].sum()
    assert pooled_row["mean"] == pytest.approx((row["value"] * row["n"]).sum() / row["n"].sum())


def _without_timings(table):
    return table[~table.metric.isin(benchmark.TIMING_METRICS)].reset_index(drop=True)


def test_interrupt_then_resume_gives_the_same_table_without_retraining(full_run, smoke_cfg, tmp_path, monkeypatch):
    out = tmp_path / "res"
    real_generate, real_fit = cfx.search.generate, cfx.models.fit
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # after two finished cells
            raise KeyboardInterrupt
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(cfx.search, "generate", flaky)
    with pytest.raises(KeyboardInterrupt):
        experiments.run(smoke_cfg, out=out, progress=False)
    st = Store(out)
    assert len(st.records(("cells",))) == 2
    assert not (out / "results.csv").exists() and not (out / "summary.md").exists()  # never a half table
    assert not list(out.rglob("*.tmp"))

    with pytest.raises(OutputExistsError, match="--resume"):  # same experiment, no flag
        experiments.run(smoke_cfg, out=out, progress=False)

    generated, fitted = [], []
    monkeypatch.setattr(cfx.search, "generate", lambda *a, **k: generated.append(1) or real_generate(*a, **k))
    monkeypatch.setattr(cfx.models, "fit", lambda train, mc, **k: fitted.append(k["seed"]) or real_fit(train, mc, **k))
    resumed = experiments.run(smoke_cfg, out=out, resume=True, progress=False)
    assert len(generated) == len(_cells(smoke_cfg)) - 2  # finished cells were skipped
    # run 0's model is restored from its saved parameters, not trained again; run 1's is new
    assert fitted == [benchmark.derive_seed(smoke_cfg.seed, 1, "model", "cats_dogs", "mlp")]
    pd.testing.assert_frame_equal(_without_timings(resumed.table), _without_timings(full_run.table))
    # training is deterministic from the seed: the same parameters as the uninterrupted run
    for r in range(2):
        rel = Path("models") / "cats_dogs" / "mlp" / f"run{r:03d}.msgpack"
        assert (out / rel).read_bytes() == (full_run.out_dir / rel).read_bytes()


def test_experiments_run_from_a_path(tmp_path, full_run):
    res = experiments.run(SMOKE, overrides=SMOKE_SET + ["figures=false"], out=tmp_path / "w", progress=False)
    assert res.out_dir == tmp_path / "w" and not (tmp_path / "w" / "figures").exists()
    pd.testing.assert_frame_equal(_without_timings(res.table), _without_timings(full_run.table))
    with pytest.raises(TypeError, match="overrides"):
        experiments.run(load_config(SMOKE), overrides=["seed=1"])


def test_refuses_to_overwrite_a_different_experiment(full_run, smoke_cfg, monkeypatch):
    monkeypatch.setattr(cfx.models, "fit", lambda *a, **k: pytest.fail("training started"))
    out = full_run.out_dir
    before = (out / "config.yaml").read_text()
    other = smoke_cfg.replace(seed=1)
    for resume in (False, True):
        with pytest.raises(OutputExistsError) as info:
            experiments.run(other, out=out, resume=resume, progress=False)
        assert "different experiment" in str(info.value) and "--force" in str(info.value)
        assert "seed: 0 -> 1" in str(info.value)
    assert (out / "config.yaml").read_text() == before


def test_force_starts_over(tmp_path):
    st = Store(tmp_path / "r")
    st.claim("a: 1\n", {"a": 1}, lambda p: {"a": 1}, resume=False, force=False)
    st.save(("cells", "d", "m", "g", "run000"), {"metrics": {}})
    with pytest.raises(OutputExistsError, match="different experiment"):
        st.claim("a: 2\n", {"a": 2}, lambda p: {"a": 1}, resume=False, force=False)
    assert st.claim("a: 2\n", {"a": 2}, lambda p: {"a": 1}, resume=False, force=True) == "force"
    assert st.records() == [] and (st.root / "config.yaml").read_text() == "a: 2\n"


def test_bad_generator_fails_before_training_and_writing(tmp_path, monkeypatch):
    def no_training(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(cfx.models, "fit", no_training)
    f = write(tmp_path / "c.yaml", BASE + "generators: [{name: dice, num_counterfactuals: 1}]\n")
    cfg = load_config(f)
    with pytest.raises(ConfigError) as info:
        experiments.run(cfg, out=tmp_path / "out", progress=False)
    assert info.value.path == "generators[0]" and "num_counterfactuals" in str(info.value)
    assert str(f) in str(info.value)
    assert not (tmp_path / "out").exists()


def test_missing_data_file_names_the_path(tmp_path, monkeypatch):
    monkeypatch.setattr(cfx.models, "fit", lambda *a, **k: pytest.fail("training started"))
    empty = tmp_path / "nodata"
    empty.mkdir()
    monkeypatch.setenv("CFX_DATA_DIR", str(empty))
    cfg = load_config(
        write(tmp_path / "c.yaml", BASE.replace("{name: moons, n: 100}", "{name: gmsc, n: 100}")), data_dir=str(empty)
    )
    with pytest.raises(FileNotFoundError) as info:
        experiments.run(cfg, out=tmp_path / "out", progress=False)
    assert "give_me_some_credit" in str(info.value) and str(empty) in str(info.value)
    assert not (tmp_path / "out").exists()


def test_multiclass_images_end_to_end(tmp_path):
    """digits (10 classes, 64 pixels): targets differ from the prediction; the image grid is drawn."""
    cfg = load_config(
        SMOKE,
        [
            "data={name: digits, n: 200}",
            "generators=[generic, greedy]",
            "n_factuals=4",
            "metrics=[validity, l0, violations]",
        ],
    )
    res = experiments.run(cfg, out=tmp_path / "d", progress=False)
    st = Store(res.out_dir)
    arr = st.load_arrays(("cells", "digits", "mlp", "greedy", "run000"))
    assert arr["counterfactuals"].shape == (4, 1, 64) and "path" not in arr
    assert np.all((arr["target"] >= 0) & (arr["target"] < 10))
    # the targets differ from the (saved) model's prediction at the factuals; the model is
    # rebuilt from its parameter structure and saved bytes, without training
    path = ("models", "digits", "mlp", "run000")
    train, _ = benchmark_runner._load_split(cfg.data[0], cfg, 0)
    clf = benchmark_runner._restore(train, cfg.models[0], st.load_blob(path), st.load(path))
    assert clf is not None and clf.n_classes == 10
    assert np.all(np.asarray(clf.predict(arr["factuals"])) != arr["target"])
    assert {p.name for p in res.figures} == {"digits_mlp_images.png", "digits_benchmark.png"}
    assert res.table[res.table.metric == "violations"]["value"].eq(0).all()


def test_benchmark_smoke_end_to_end(tmp_path):
    """One generator of each kind of step rule x {mlp, ensemble} on moons, with calibration (ECCCo);
    every registered generator runs through cfx.generate in tests/test_search.py, and the digits
    images in test_multiclass_images_end_to_end."""
    cfg = load_config(CONFIGS / "benchmark_smoke.yaml", ["data=[{name: moons, n: 200}]"])
    res = experiments.run(cfg, out=tmp_path / "b", progress=False)
    cells = res.table[["dataset", "model", "generator"]].drop_duplicates()
    assert len(cells) == 2 * len(cfg.generators)
    assert res.table[res.table.metric == "violations"]["value"].eq(0).all()
    names = {p.name for p in res.figures}
    assert {"moons_ensemble_2d.png", "moons_benchmark.png"} <= names
    # the ensemble is rebuilt from its saved parameters exactly as training built it
    st = Store(res.out_dir)
    path = ("models", "moons", "ensemble", "run000")
    train, _ = benchmark_runner._load_split(cfg.data[0], cfg, 0)
    clf = benchmark_runner._restore(train, cfg.models[1], st.load_blob(path), st.load(path))
    grid = st.load_arrays(path)  # p(class | x) of the trained ensemble on the 2-D mesh
    points = np.stack([grid["xx"].ravel(), grid["yy"].ravel()], 1)
    np.testing.assert_allclose(np.asarray(clf.probs(points)).reshape(grid["probs"].shape), grid["probs"], atol=1e-6)

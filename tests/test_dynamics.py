"""cfx.dynamics: MMD against a numpy reference and its invariants, bad input, and the
recourse loop (no recompiles across rounds, checkpoint + resume == uninterrupted, an empty
pool stops cleanly). Tiny seeded problems; every simulation shares one set of shapes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np
import pytest
import compile_counts

import cfx
import cfx.dynamics as dyn
from cfx.experiments.store import Store


def _reference_mmd(x, y, ell=0.5):
    """Unbiased MMD² by explicit double loops (the textbook formula)."""
    k = lambda a, b: np.exp(-np.sum((a - b) ** 2) / (2 * ell**2))
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_mmd_matches_the_reference_formula():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(13, 3)), rng.normal(0.5, 1.0, size=(9, 3))
    for ell in (0.5, 1.3):
        assert dyn.mmd(x, y, length_scale=ell) == pytest.approx(_reference_mmd(x, y, ell), rel=1e-4, abs=1e-6)


def test_masked_mmd_equals_mmd_of_the_selected_rows():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 2)), rng.normal(1.0, 1.0, size=(20, 2))
    mx, my = rng.random(20) < 0.6, rng.random(20) < 0.4
    value, p = dyn.masked_mmd_test(x, mx, y, my, key=jax.random.key(0), n_permutations=0)
    assert float(value) == pytest.approx(_reference_mmd(x[mx], y[my]), rel=1e-4, abs=1e-6)
    assert np.isnan(float(p))


def test_permuted_groups_are_uniform_m_subsets_of_the_valid_rows():
    """Selection sampling: exactly m valid rows per permutation, every m-subset equally likely
    (chi² over the 10 pairs of 5 valid rows, 9 degrees of freedom: p < 0.001 above 27.9)."""
    import importlib
    from collections import Counter

    mmd = importlib.import_module("cfx.dynamics.mmd")
    valid = np.array([True, False, True, True, False, True, True, False])
    groups = np.asarray(jax.jit(mmd._permuted_groups)(valid, 2, jax.random.split(jax.random.key(0), 20_000)))
    assert set(groups.sum(axis=1)) == {2.0} and groups[:, ~valid].sum() == 0
    counts = np.array(list(Counter(tuple(np.flatnonzero(g)) for g in groups).values()))
    assert len(counts) == 10 and ((counts - 2000.0) ** 2 / 2000.0).sum() < 27.9


def test_mmd_invariants_and_permutation_p_values():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(100, 2)), rng.normal(size=(100, 2))
    shifted = rng.normal(size=(100, 2)) + np.array([1.5, 0.0])
    key = jax.random.key(0)
    assert abs(dyn.mmd_test(a, a, key=key, n_permutations=100)[0]) < 0.02  # the same set: ~0
    same, p_same = dyn.mmd_test(a, b, key=key, n_permutations=100)
    moved, p_moved = dyn.mmd_test(a, shifted, key=key, n_permutations=100)
    assert abs(same) < 0.02 and moved > 0.03
    assert p_moved < 0.01 and p_same > 0.05
    # the permutation null is invariant to swapping the sides
    assert dyn.mmd_test(shifted, a, key=key, n_permutations=100)[0] == pytest.approx(moved, rel=1e-5)


def test_mmd_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="dimensionality.*argument y"):
        dyn.mmd(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="x must be a 2-D"):
        dyn.mmd(np.zeros(5), np.zeros((5, 1)))
    with pytest.raises(ValueError, match="n_permutations"):
        dyn.mmd_test(np.zeros((5, 2)), np.ones((5, 2)), key=jax.random.key(0), n_permutations=-1)


def test_metric_helpers():
    y = np.array([1, 1, 0, 0, 1])
    assert float(dyn.f1_score(y, np.array([1, 0, 0, 1, 1]), 1)) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    grid = dyn.feature_grid(np.array([[0.0, -1.0], [2.0, 1.0]]), 50, resolution=5)
    assert grid.shape == (50, 2) and grid.min(0).tolist() >= [0, -1] and grid.max(0).tolist() <= [2, 1]
    assert set(np.unique(grid[:, 0])) <= {0.0, 0.5, 1.0, 1.5, 2.0}


# --------------------------------------------------------------------------- the simulation
@pytest.fixture(scope="module")
def split():
    data = cfx.data.load("overlapping", n=120, seed=3)
    return cfx.data.train_test(data, seed=3)


GENERATORS = {"generic": cfx.generators.Generic(), "gravitational": cfx.generators.Gravitational(bank_size=50)}
OPTIONS = dict(
    model="linear",
    fit_options={"learning_rate": 0.05, "batch_size": 32},
    initial_epochs=10,
    retrain_epochs=2,
    mu=0.1,
    eval_every=2,
    num_counterfactuals=2,
    max_steps=20,
    n_permutations=20,
    grid_samples=64,
    seed=0,
)


def test_simulate_rejects_bad_input_before_training(split):
    train, test = split
    for mu in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="mu must be a share in \\(0, 1\\]"):
            dyn.simulate(train, test, GENERATORS, **{**OPTIONS, "mu": mu})
    with pytest.raises(ValueError, match="rounds must be an int >= 1"):
        dyn.simulate(train, test, GENERATORS, rounds=0)
    with pytest.raises(ValueError, match="pool must be one of"):
        dyn.simulate(train, test, GENERATORS, pool="everyone")
    with pytest.raises(TypeError, match="generators\\['x'\\]"):
        dyn.simulate(train, test, {"x": "generic"})


class Interrupt(Exception):
    pass


def test_rounds_do_not_recompile_and_resume_equals_uninterrupted(split, tmp_path):
    train, test = split
    counts, compiles = {}, []

    def on_compile(event, seconds, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    def count(rep, t, rows):
        counts[t] = (compile_counts.search(), compile_counts.fit(), compile_counts.dynamics(), len(compiles))

    jax.monitoring.register_event_duration_secs_listener(on_compile)
    try:
        full = dyn.simulate(
            train, test, GENERATORS, rounds=4, checkpoint=Store(tmp_path / "a"), on_round=count, **OPTIONS
        )
    finally:
        jax.monitoring.unregister_event_duration_listener(on_compile)
    # search programs, training epochs, cfx.dynamics' own jitted functions and every XLA compile
    assert counts[1] == counts[4], f"a round recompiled something: {counts}"
    assert [r["round"] for r in full.history] == [t for t in range(5) for _ in GENERATORS]
    evaluated = [r for r in full.history if "mmd_domain" in r]
    assert sorted({r["round"] for r in evaluated}) == [0, 2, 4]
    assert all(0 <= r["p_domain"] <= 1 and 0 <= r["disagreement"] <= 1 for r in evaluated)
    assert all(
        r["chosen"] >= 1 and 0 <= r["validity"] <= 1 and 0 <= r["redundancy"] <= 1
        for r in full.history
        if r["round"] > 0
    )

    def stop_at_2(rep, t, rows):
        if t == 2:
            raise Interrupt

    store = Store(tmp_path / "b")
    with pytest.raises(Interrupt):
        dyn.simulate(train, test, GENERATORS, rounds=4, checkpoint=store, on_round=stop_at_2, **OPTIONS)
    seen = []
    resumed = dyn.simulate(
        train, test, GENERATORS, rounds=4, checkpoint=store, on_round=lambda rep, t, rows: seen.append(t), **OPTIONS
    )
    assert seen == [3, 4]  # rounds 0..2 came from the checkpoints
    assert resumed.history == full.history
    for label in GENERATORS:
        np.testing.assert_array_equal(resumed.final[0][label]["data"].X, full.final[0][label]["data"].X)
        np.testing.assert_array_equal(resumed.final[0][label]["data"].y, full.final[0][label]["data"].y)


def test_an_empty_pool_stops_the_simulation_cleanly(split):
    train, test = split
    # Only three points carry the non-target label and the pool is read from the labels: one
    # of them gets recourse per round (n = max(1, round(0.1 * 3))), so round 4 finds nobody.
    y = np.ones_like(train.y)
    y[:3] = 0
    few = dataclasses.replace(train, y=y)
    res = dyn.simulate(few, test, {"generic": GENERATORS["generic"]}, rounds=6, **{**OPTIONS, "pool": "label"})
    assert len(res.stopped) == 1 and "pool empty" in res.stopped[0]["reason"]
    assert res.stopped[0]["round"] == 4 and max(r["round"] for r in res.history) == 3
    assert [r["pool"] for r in res.history if r["round"] > 0] == [3, 2, 1]
    assert np.all(res.final[0]["generic"]["data"].y == 1)


# --------------------------------------------------------------------------- the experiment kind
SMOKE = Path(__file__).resolve().parents[1] / "configs" / "dynamics_smoke.yaml"


def test_dynamics_smoke_config_end_to_end(tmp_path):
    from cfx import experiments

    report = experiments.run(SMOKE, out=tmp_path / "smoke", progress=False)
    final = report.tables["final"]
    assert set(final["generator"]) == {"generic", "gravitational"}
    assert set(final["round"]) == {4} and (final[final["metric"] == "mmd_domain"]["n"] == 2).all()
    assert "| overlapping | linear | generic | 4 |" in report.summary and "(p " in report.summary
    names = {p.name for p in report.figures}
    assert {"overlapping_mmd_domain.png", "overlapping_f1_change.png", "overlapping_disagreement.png"} <= names
    rounds = report.tables["rounds"]
    assert sorted(rounds["round"].unique()) == [0, 1, 2, 3, 4] and set(rounds["repetition"]) == {0, 1}
    # a finished folder reruns as a resume: nothing is simulated again, the report is identical
    # (figures is a location key: turning it off keeps the experiment's identity)
    again = experiments.run(SMOKE, out=tmp_path / "smoke", progress=False, overrides=["figures=false"])
    assert again.summary == report.summary and again.figures == []
    assert experiments.show(tmp_path / "smoke") == report.summary


@pytest.mark.parametrize(
    "override, path, message",
    [
        ("simulation.mu=0", "simulation.mu", "must be in (0, 1]"),
        ("simulation.mu=1.5", "simulation.mu", "must be in (0, 1]"),
        ("simulation.rounds=0", "simulation.rounds", "must be > 0"),
        ("simulation.pool=all", "simulation.pool", "must be one of"),
        ("simulation.roundz=3", "simulation.roundz", "did you mean 'rounds'"),
        ("generators[0].cots=1", "generators[0].cots", "did you mean 'cost'"),
        ("models[0].name=lineer", "models[0].name", "unknown model"),
    ],
)
def test_dynamics_config_errors_name_the_key(override, path, message):
    from cfx import experiments

    with pytest.raises(experiments.ConfigError) as err:
        experiments.load_config(SMOKE, [override])
    assert err.value.path == path and message in str(err.value)

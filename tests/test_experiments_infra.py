"""The generic experiment machinery without JAX work: the results store (records keyed by any
path), progress output, tables, the config loader, and a toy experiment kind registered at
run time (a kind is one module's worth of code plus a registry entry)."""

from __future__ import annotations

import io
import math
import sys
import types

import numpy as np
import pandas as pd
import pytest

from cfx import experiments
from cfx.experiments import ConfigError, Experiment, Kind, OutputExistsError, Report, Store, tables
from cfx.experiments.config import PositiveInt, Probability, load_raw
from cfx.experiments.progress import Progress


# --------------------------------------------------------------------------------------
# Store
# --------------------------------------------------------------------------------------


def test_store_records_keyed_by_any_path(tmp_path):
    st = Store(tmp_path / "out")
    rounds = [("rounds", f"r{i:03d}") for i in range(3)]
    epoch = ("training", "ct", "epochs", "e005")
    st.save(rounds[0], {"mmd": 0.1}, arrays={"x": np.arange(4.0), "skip": None})
    st.save(rounds[2], {"mmd": float("nan")})
    st.save(epoch, {"loss": 0.3}, blob=b"\x00params")
    assert st.done(rounds[0]) and not st.done(rounds[1]) and st.done(epoch)
    assert st.load(rounds[0]) == {"mmd": 0.1} and math.isnan(st.load(rounds[2])["mmd"])
    arrays = st.load_arrays(rounds[0])
    assert list(arrays) == ["x"] and arrays["x"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert st.load_arrays(rounds[2]) is None and st.load_blob(rounds[2]) is None
    assert st.load_blob(epoch) == b"\x00params"
    assert st.records(("rounds",)) == [rounds[0], rounds[2]]
    assert st.records() == sorted([rounds[0], rounds[2], epoch])
    assert (tmp_path / "out" / "training" / "ct" / "epochs" / "e005.msgpack").exists()
    for bad in [(), ("..", "x"), ("a/b",), ("ok", "")]:
        with pytest.raises(ValueError, match="record path"):
            st.save(bad, {})


def test_a_blob_without_its_json_does_not_count(tmp_path):
    """The JSON is written last: a record interrupted after its blob is not done."""
    st = Store(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.msgpack").write_bytes(b"half")
    assert not st.done(("models", "m")) and st.load_blob(("models", "m")) is None


def test_claim_counts_expected_records(tmp_path):
    st = Store(tmp_path / "r")
    expected = [("rounds", "r000"), ("rounds", "r001")]
    assert st.claim("a: 1\n", {"a": 1}, lambda p: {"a": 1}, resume=False, force=False, expected=expected) == "new"
    st.save(expected[0], {})
    with pytest.raises(OutputExistsError, match="1 of 2 records finished"):
        st.claim("a: 1\n", {"a": 1}, lambda p: {"a": 1}, resume=False, force=False, expected=expected)
    st.save(expected[1], {})  # all done: a re-run just rebuilds the report
    assert st.claim("a: 1\n", {"a": 1}, lambda p: {"a": 1}, resume=False, force=False, expected=expected) == "resume"
    env = experiments.store.read_json(st.root / "environment.json")
    assert [s["mode"] for s in env["sessions"]] == ["new", "resume"]


# --------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_in_a_log_writes_one_line_per_step():
    log = io.StringIO()
    with Progress(3, initial=1, desc="exp", stream=log) as p:
        assert not p.tty
        p.status("moons/mlp: training")
        p.status("quiet", log=False)
        p.step("a", seconds=0.5)
        p.step("b")
    assert log.getvalue().splitlines() == [
        "exp: moons/mlp: training",
        "exp: [2/3] a done (0.50 s)",
        "exp: [3/3] b done",
    ]
    assert "\r" not in log.getvalue()


def test_progress_on_a_terminal_draws_a_bar_and_silent_is_silent():
    term = _Terminal()
    with Progress(2, desc="exp", stream=term) as p:
        assert p.tty
        p.step("a")
    assert "\r" in term.getvalue() and "2" in term.getvalue()
    quiet = _Terminal()
    with Progress(2, desc="exp", enabled=False, stream=quiet) as p:
        p.status("x")
        p.step("a")
    assert quiet.getvalue() == ""


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def test_long_table_summary_and_markdown():
    recs = [
        {"data": "d", "run": r, "metrics": {"l1": {"mean": m, "sd": s, "n": n}, "v": {"mean": 1.0, "sd": 0.0, "n": 2}}}
        for r, (m, s, n) in enumerate([(1.0, 0.5, 4), (2.0, math.nan, 1)])
    ]
    t = tables.long_table(recs, ["data", "run"])
    assert list(t.columns) == ["data", "run", "metric", "value", "sd", "n"] and len(t) == 4
    s = tables.summarise(t, ["data"])
    row = s[s.metric == "l1"].iloc[0]
    assert row["n"] == 5 and row["runs"] == 2 and row["mean"] == pytest.approx(6 / 5)
    assert row["sd_runs"] == pytest.approx(np.std([1.0, 2.0], ddof=1))
    md = tables.markdown(s, ["data"], ["v", "l1", "absent"], title="T", note="note")
    assert md.splitlines()[:4] == ["# T", "", "| data | v | l1 |", "|---|---|---|"]
    assert md.splitlines()[4].startswith("| d | 1 ± 0 | 1.2 ± ") and md.endswith("note\n")
    assert tables.format_mean_sd(math.nan, 1.0) == "nan" and tables.format_mean_sd(0.5, math.nan) == "0.5"


# --------------------------------------------------------------------------------------
# A toy kind: dynamics-like rounds, registered at run time
# --------------------------------------------------------------------------------------


class CountConfig(Experiment):
    """``rounds`` rounds; round r records ``value = r * rate``."""

    rounds: PositiveInt = 3
    rate: Probability = 0.5

    @classmethod
    def parse(cls, raw):
        cfg = raw.source().validate(cls, raw.data, "")
        cfg._source = None if raw.file is None else str(raw.file)
        return cfg

    def plan(self) -> str:
        return f"{self.rounds} rounds"


def _round(r):
    return ("rounds", f"r{r:03d}")


def _run(cfg, store, state, progress):
    for r in range(cfg.rounds):
        if not store.done(_round(r)):
            store.save(_round(r), {"round": r, "value": r * cfg.rate}, arrays={"x": np.full(2, r)})
            progress.step(f"round {r}")


def _report(cfg, store):
    frame = pd.DataFrame([store.load(_round(r)) for r in range(cfg.rounds)])
    store.write_table("rounds.csv", frame)
    return Report(summary=frame.to_string(index=False), out_dir=store.root, tables={"rounds": frame})


COUNT = Kind(
    name="count",
    schema=CountConfig,
    check=lambda cfg: None,
    run=_run,
    report=_report,
    expected=lambda cfg: [_round(r) for r in range(cfg.rounds)],
    show=lambda store, raw, metrics: (store.root / "rounds.csv").read_text(),
    description="toy rounds",
)


@pytest.fixture
def count_kind(monkeypatch):
    monkeypatch.setitem(experiments.KINDS, "count", COUNT)
    return COUNT


def test_a_new_kind_runs_resumes_and_reports(count_kind, tmp_path, monkeypatch):
    cfg_file = tmp_path / "count.yaml"
    cfg_file.write_text("kind: count\nrounds: 4\n")
    cfg = experiments.load_config(cfg_file)
    assert isinstance(cfg, CountConfig) and cfg.name == "count" and cfg.plan() == "4 rounds"
    rep = experiments.run(cfg, out=tmp_path / "o", progress=False)
    assert rep.tables["rounds"]["value"].tolist() == [0.0, 0.5, 1.0, 1.5]
    st = Store(tmp_path / "o")
    assert st.records(("rounds",)) == [_round(r) for r in range(4)]
    # a longer run of the same experiment is a different experiment ...
    with pytest.raises(OutputExistsError, match="rounds: 4 -> 6"):
        experiments.run(cfg_file, overrides=["rounds=6"], out=tmp_path / "o", progress=False)
    # ... a re-run of this one recomputes nothing
    monkeypatch.setattr(Store, "save", lambda *a, **k: pytest.fail("a done record was recomputed"))
    assert experiments.run(cfg_file, out=tmp_path / "o", progress=False).summary == rep.summary
    assert "value" in experiments.show(tmp_path / "o")
    assert "toy rounds" in experiments.list_kinds()["count"]


def test_a_new_kind_gets_the_same_error_quality(count_kind, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("kind: count\nround: 3\n")
    with pytest.raises(ConfigError) as info:
        experiments.load_config(f)
    e = info.value
    assert e.file == str(f) and e.path == "round" and "did you mean 'rounds'" in str(e) and "allowed keys" in str(e)
    f.write_text("kind: count\nrate: 2\n")
    with pytest.raises(ConfigError, match=r"rate: must be in \(0, 1\], got 2.0"):
        experiments.load_config(f)
    with pytest.raises(ConfigError, match=r"rounds: expected an integer, got 'x' \(str\) \(from --set rounds=x\)"):
        experiments.load_config(f, ["rounds=x", "rate=0.1"])


def test_a_preset_fills_fixes_and_refuses(count_kind, tmp_path, monkeypatch):
    import dataclasses

    from cfx.experiments import Preset

    halves = Preset("halves", "rate 0.25 per round, as in the reference", values={"rate": 0.25})
    monkeypatch.setitem(experiments.KINDS, "count", dataclasses.replace(COUNT, presets={"halves": halves}))
    f = tmp_path / "c.yaml"
    f.write_text("kind: count\nrounds: 2\npreset: halves\n")
    cfg = experiments.load_config(f)
    assert cfg.rate == 0.25 and cfg.preset == "halves"
    # the resolved config (as saved in a results folder) loads back to the same experiment
    (tmp_path / "resolved.yaml").write_text(cfg.dump())
    assert experiments.load_config(tmp_path / "resolved.yaml").identity() == cfg.identity()
    # a setting the preset fixes is refused, naming both values; an unknown preset lists the known ones
    with pytest.raises(ConfigError, match=r"rate: preset 'halves' fixes this to 0.25, but the config sets 0.5"):
        experiments.load_config(f, ["rate=0.5"])
    with pytest.raises(
        ConfigError,
        match=r"preset: unknown preset 'halve' for kind 'count' \(did you mean "
        r"'halves'\?\); available: halves",
    ):
        experiments.load_config(f, ["preset=halve"])
    assert experiments.list_presets()["count/halves"] == "rate 0.25 per round, as in the reference"


def test_load_raw_is_kind_agnostic(tmp_path):
    (tmp_path / "base.yaml").write_text("a: {b: 1, c: [1, 2]}\nitems: [x, {name: y}]\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\na: {c: [3]}\n")
    raw = load_raw(tmp_path / "child.yaml", ["a.b=2", "items[0].k=1", "new.deep=true"])
    assert raw.data == {"a": {"b": 2, "c": [3]}, "items": [{"name": "x", "k": 1}, {"name": "y"}], "new": {"deep": True}}
    assert raw.overridden == {"a.b": "a.b=2", "items[0].k": "items[0].k=1", "new.deep": "new.deep=true"}
    e = raw.source().error("a.b", "bad")
    assert e.path == "a.b" and str(e).endswith("a.b: bad (from --set a.b=2)")


def test_an_unreadable_saved_config_is_never_overwritten(tmp_path):
    st = Store(tmp_path / "r")
    st.claim("a: 1\n", {"a": 1}, lambda p: {"a": 1}, resume=False, force=False)

    def old_format(path):
        raise ValueError("generators[0].search: gone")

    with pytest.raises(OutputExistsError, match=r"cannot read \(generators\[0\].search: gone\)"):
        st.claim("a: 1\n", {"a": 1}, old_format, resume=True, force=False)
    assert (st.root / "config.yaml").read_text() == "a: 1\n"


def test_kind_of_takes_a_modules_conventional_parts(monkeypatch):
    from cfx.experiments.kinds import no_check, show_summary

    module = types.ModuleType("pkg.tally")
    module.run, module.report, module.expected = _run, _report, lambda cfg: []
    module.show = types.ModuleType("pkg.tally.show")  # a submodule named like a part is not the part
    monkeypatch.setitem(sys.modules, module.__name__, module)
    kind = Kind.of("pkg.tally", CountConfig, unit="round")
    assert (kind.name, kind.schema, kind.run, kind.report, kind.expected) == (
        "tally",
        CountConfig,
        _run,
        _report,
        module.expected,
    )
    assert (kind.check, kind.show, kind.presets, kind.unit) == (no_check, show_summary, {}, "round")
    module.PRESETS, module.check = {"p": None}, len
    kind = Kind.of(module, CountConfig, name="t", report=_run)  # keywords override
    assert (kind.name, kind.report, kind.check, kind.presets) == ("t", _run, len, {"p": None})

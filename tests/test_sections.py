"""The experiment vocabulary (cfx.experiments.sections and runs): every kind reads the same
sections, validated once; a Kind is a schema, a run and a report; runners ask a generator what
it needs instead of testing its class. No training: configs, seeds and small generators only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from cfx import experiments
from cfx.experiments import ConfigError, Experiment, Kind, Report, load_config, parse_config, runs, sections
from cfx.experiments.config import PositiveInt

BAD_GENERATOR = "generators: [{name: wachter, lamda: 0.1}]"


@pytest.mark.parametrize(
    "kind, body",
    [
        ("benchmark", "data: [moons]\nmodels: [mlp]\n" + BAD_GENERATOR),
        ("dynamics", "data: [moons]\nmodels: [linear]\n" + BAD_GENERATOR),
        ("eccco", "data: [moons]\nmodels: [{name: mlp}]\n" + BAD_GENERATOR),
    ],
)
def test_every_kind_validates_a_generator_the_same_way(kind, body):
    with pytest.raises(ConfigError) as info:
        parse_config({**yaml.safe_load(body), "kind": kind, "name": "x"})
    assert info.value.path == "generators[0].lamda" and "did you mean 'cost'" in str(info.value)


@pytest.mark.parametrize(
    "kind, extra",
    [
        ("benchmark", {"models": ["mlp"], "generators": ["generic"]}),
        ("dynamics", {"models": ["linear"], "generators": ["generic"]}),
        ("eccco", {"models": [{"name": "mlp"}], "generators": ["generic"]}),
        ("ct", {}),
    ],
)
def test_every_kind_reads_the_shared_data_section(kind, extra):
    cfg = parse_config({"kind": kind, "name": "x", "data": [{"name": "moons", "n": 50, "noise": 0.1}], **extra})
    assert isinstance(cfg.data[0], sections.DataSpec) and cfg.data[0].options == {"noise": 0.1}
    with pytest.raises(ConfigError, match=r"data\[0\]\.name: .*unknown data set 'moonz'"):
        parse_config({"kind": kind, "name": "x", "data": [{"name": "moonz"}], **extra})
    with pytest.raises(ConfigError, match="appears twice"):
        parse_config({"kind": kind, "name": "x", "data": ["moons", "moons"], **extra})


def test_seeds_depend_on_their_labels_only():
    assert runs.derive_seed(0, 1, "data", "moons") == runs.derive_seed(0, 1, "data", "moons")
    seeds = {runs.derive_seed(0, r, "data", d) for r in (0, 1) for d in ("moons", "circles")}
    assert len(seeds) == 4 and runs.derive_seed(0, None, "data", "moons") not in seeds
    assert runs.cell_path("d", "m", "g", run=2) == ("cells", "d", "m", "g", "run002")


def test_factual_targets_rule():
    rng = np.random.default_rng(0)
    rows, targets = runs.factual_targets(np.array([0, 1, 0, 1]), 2, rng)
    assert rows.tolist() == [0, 2] and set(targets.tolist()) == {1}
    rows, targets = runs.factual_targets(np.array([0, 1, 2, 2]), 3, rng)
    assert rows.tolist() == [0, 1, 2, 3] and np.all(targets != np.array([0, 1, 2, 2]))


def test_generators_say_what_they_need_from_the_trained_model():
    import cfx.generators

    assert cfx.generators.make("generic").needs() == frozenset()
    assert cfx.generators.make("eccco").needs() == {"calibration"}
    assert cfx.generators.make("eccco", set_size=0.0).needs() == frozenset()
    assert cfx.generators.make("eccco_l1").needs() == {"calibration", "conditional_samples"}
    assert cfx.generators.make("eccco_l1").replace(q_hat=np.float32(0.5)).needs() == {"conditional_samples"}


class Tally(Experiment):
    kind: str = "tally"
    rounds: PositiveInt = 2

    @classmethod
    def parse(cls, raw):
        return raw.source().validate(cls, raw.data, "")

    def plan(self):
        return f"{self.rounds} rounds"


def _report(cfg, store):
    table = pd.DataFrame({"round": range(cfg.rounds)})
    store.write_text("summary.md", table.to_string(index=False))
    return Report(summary=table.to_string(index=False), out_dir=store.root, tables={"rounds": table})


def test_a_kind_is_a_schema_a_run_and_a_report(tmp_path, monkeypatch):
    kind = Kind(name="tally", schema=Tally, run=lambda cfg, store, state, progress: None, report=_report)
    monkeypatch.setitem(experiments.KINDS, "tally", kind)
    (tmp_path / "t.yaml").write_text("kind: tally\nrounds: 3\n")
    report = experiments.run(load_config(tmp_path / "t.yaml"), out=tmp_path / "out", progress=False)
    assert report.tables["rounds"]["round"].tolist() == [0, 1, 2]
    assert experiments.show(tmp_path / "out") == report.summary  # the default show: summary.md

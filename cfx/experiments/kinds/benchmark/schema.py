"""The benchmark's config (``kind: benchmark``): :class:`BenchmarkConfig`; its sections are the
shared ones of :mod:`cfx.experiments.sections` (data sets, models, generators, search, calibration),
validated there against cfx's registries.
"""

from __future__ import annotations

from typing import Mapping

from cfx.experiments import sections
from cfx.experiments.config import RawConfig, Str, plain
from cfx.experiments.sections import CalibrationSpec, DataSpec, GeneratorSpec, ModelSpec, SearchSpec

__all__ = ["BenchmarkConfig", "DataConfig", "ModelConfig", "GeneratorConfig", "SearchConfig", "CalibrationConfig"]

# the benchmark's names of the shared sections
DataConfig, ModelConfig, GeneratorConfig = DataSpec, ModelSpec, GeneratorSpec
SearchConfig, CalibrationConfig = SearchSpec, CalibrationSpec

# keys that moved from the experiment's search section onto each generator
_MOVED_TO_GENERATOR = (
    "threshold",
    "num_counterfactuals",
    "start",
    "convergence",
    "min_steps",
    "start_scale",
    "init",
    "init_scale",
)


class BenchmarkConfig(sections.GridExperiment):
    """The grid data x models x generators x runs and how to score it.

    ``n_factuals`` factuals per (data set, model, run) are drawn from the test split among
    points the model predicts as a non-target class; ``metrics`` (None: every metric of
    ``cfx.evaluate``) are computed by ``cfx.evaluate``; run r uses seeds derived from
    ``(seed, r, labels)``. ``output`` is the results folder (default ``results/<name>``);
    ``figures`` turns the PNG figures on or off.
    """

    kind: Str = "benchmark"

    @classmethod
    def parse(cls, raw: RawConfig | Mapping, *, name: str | None = None) -> "BenchmarkConfig":
        """Validate a merged mapping (or a :class:`RawConfig`) into a BenchmarkConfig.

        Raises :class:`ConfigError` naming the file, the key path and the allowed values.
        """
        ctx, d = sections.begin(cls, raw, name, data=DataConfig)
        d["models"] = sections.section_list(d, "models", ctx, sections.model_item)
        d["generators"] = sections.section_list(d, "generators", ctx, sections.generator_item)
        d["search"] = ctx.validate(
            SearchConfig,
            {} if d.get("search") is None else d["search"],
            "search",
            hints={
                k: f"{k} is a generator option now: set it on each generator that needs it (e.g. "
                f"generators[0].{k}); search keeps only the call options {', '.join(SearchConfig.model_fields)}"
                for k in _MOVED_TO_GENERATOR
            },
        )
        d["calibration"] = ctx.validate(CalibrationConfig, d.get("calibration") or {}, "calibration")
        sections.metric_names(d, ctx)
        return sections.finish(cls, ctx, d, raw)

    # -- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A plain mapping in the input schema: ``BenchmarkConfig.parse(c.to_dict()) == c``."""
        return {
            "kind": self.kind,
            "name": self.name,
            "description": self.description,
            "data": [sections.flat(x, "options") for x in self.data],
            "models": [sections.flat(x, "options") for x in self.models],
            "generators": [sections.flat(x, "hyperparams") for x in self.generators],
            "search": plain(self.search.model_dump()),
            "calibration": plain(self.calibration.model_dump()),
            "metrics": plain(self.metrics),
            "n_factuals": self.n_factuals,
            "runs": self.runs,
            "seed": self.seed,
            "output": self.output,
            "figures": self.figures,
        }

    def plan(self) -> str:
        """One line describing the run (its size and output folder) for ``cfx run``."""
        n = len(self.data) * len(self.models) * len(self.generators) * self.runs
        return (
            f"grid: {len(self.data)} data x {len(self.models)} models x {len(self.generators)} generators x "
            f"{self.runs} runs = {n} cells -> {self.output_dir}"
        )

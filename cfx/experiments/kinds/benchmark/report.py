"""The benchmark's report: ``results.csv``, ``summary.md`` / ``summary.csv``, ``timings.csv``,
``rules.csv`` (rule-based generators: T-CREx's rules) and the figures, always from the saved
records; ``show`` for a finished folder.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from cfx.evaluation.registry import headline_metrics
from cfx.experiments import tables
from cfx.experiments.kinds import Report
from cfx.experiments.kinds.benchmark.runner import _cell, _model_path, expected
from cfx.experiments.kinds.benchmark.schema import BenchmarkConfig
from cfx.experiments.store import Store

__all__ = [
    "BenchmarkReport",
    "summary_markdown",
    "summarise",
    "report",
    "show",
    "TIMING_METRICS",
    "HEADLINE_METRICS",
    "KEYS",
]

# Wall-clock metrics: they differ between two otherwise identical runs.
TIMING_METRICS = ("runtime_s", "runtime_total_s", "compile_s")
# Columns of summary.md when the config does not list its metrics (results.csv has all): the
# metric registry's "benchmark" headline table (cfx.evaluation.registry.headline_metrics).
HEADLINE_METRICS = headline_metrics("benchmark")
KEYS = ("dataset", "model", "generator")
_NOTE = "mean ± sd over all counterfactuals of all runs; every metric of every cell is in results.csv."


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class BenchmarkReport(Report):
    """A :class:`Report` whose tables are ``results`` (long), ``summary`` and ``timings``."""

    @property
    def table(self) -> pd.DataFrame:
        """One row per (dataset, model, generator, run, metric): value, sd, n."""
        return self.tables["results"]

    @property
    def summary_table(self) -> pd.DataFrame:
        """Pooled over runs: one row per (dataset, model, generator, metric)."""
        return self.tables["summary"]

    @property
    def timings(self) -> pd.DataFrame:
        """The per-cell timings table (``tables['timings']``)."""
        return self.tables["timings"]


def summary_markdown(summary: pd.DataFrame, metrics: Sequence[str] | None = None, title: str | None = None) -> str:
    """Markdown pivot: rows (dataset, model, generator), columns metrics (default: the
    headline ones present), cells ``mean ± sd``."""
    return tables.markdown(summary, KEYS, metrics or headline_metrics("benchmark"), title=title, note=_NOTE)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Pool each (dataset, model, generator, metric) over runs (see :func:`tables.summarise`)."""
    return tables.summarise(table, KEYS)


def report(cfg: BenchmarkConfig, store: Store) -> BenchmarkReport:
    """Tables and figures from the saved cells (a resumed run reports what an uninterrupted one does)."""
    records = [store.load(p) for p in expected(cfg)]
    table = tables.long_table(records, [*KEYS, "run"])
    timings = pd.DataFrame([{**{k: rec[k] for k in (*KEYS, "run")}, **rec["timings"]} for rec in records])
    summary_table = summarise(table)
    summary = summary_markdown(summary_table, cfg.metrics, title=cfg.name)
    store.write_table("results.csv", table)
    store.write_text("summary.md", summary)
    store.write_table("summary.csv", summary_table)
    store.write_table("timings.csv", timings, float_format="%.6g")
    rules = [{**{k: rec[k] for k in (*KEYS, "run")}, **row} for rec in records for row in rec.get("rules", ())]
    if rules:  # rule-based generators (T-CREx): their global rules, raw units
        store.write_table("rules.csv", pd.DataFrame(rules), float_format="%.6g")
    figures = _figures(cfg, store, summary_table) if cfg.figures else []
    return BenchmarkReport(
        summary=summary,
        out_dir=store.root,
        figures=figures,
        tables={"results": table, "summary": summary_table, "timings": timings},
    )


def _image_shape(name: str, d: int) -> tuple[int, int] | None:
    try:
        import cfx.data

        if cfx.data.info(name).kind != "vision":
            return None
    except (ValueError, KeyError):
        return None
    side = int(round(math.sqrt(d)))
    return (side, side) if side * side == d else None


def _figures(cfg: BenchmarkConfig, store: Store, summary: pd.DataFrame) -> list[Path]:
    """2-D panels (run 0 of each 2-D data set and model), image grids, one chart per data set."""
    from cfx import plotting

    written = []
    for dc in cfg.data:
        for mc in cfg.models:
            arrays = {g.key: store.load_arrays(_cell(dc.key, mc.key, g.key, 0)) for g in cfg.generators}
            first = next(iter(arrays.values()))
            d = first["factuals"].shape[1]
            grid = store.load_arrays(_model_path(dc.key, mc.key, 0))
            if d == 2 and grid is not None:
                fig = plotting.plot_2d_panels(grid, arrays, title=f"{dc.key} / {mc.key}")
                written.append(store.write_figure(f"{dc.key}_{mc.key}_2d", plotting.figure_png(fig)))
            shape = _image_shape(dc.name, d)
            if shape is not None:
                ends = {k: a["counterfactuals"][:, 0] for k, a in arrays.items()}
                fig = plotting.plot_image_grid(
                    first["factuals"], ends, shape, targets=first["target"], title=f"{dc.key} / {mc.key}"
                )
                written.append(store.write_figure(f"{dc.key}_{mc.key}_images", plotting.figure_png(fig)))
        sub = summary[summary["dataset"] == dc.key]
        if len(sub):
            fig = plotting.plot_benchmark(sub, metrics=cfg.metrics or headline_metrics("benchmark"), title=dc.key)
            written.append(store.write_figure(f"{dc.key}_benchmark", plotting.figure_png(fig)))
    return written


def show(store: Store, raw: Mapping, metrics: Sequence[str] | None = None) -> str:
    """The summary table of a results folder (``raw``: its saved config.yaml, not re-validated,
    so folders of older cfx versions still show); raises LookupError while it is unfinished."""
    csv = store.root / "results.csv"
    if not csv.exists():
        n = (
            len(_as_items(raw.get("data")))
            * len(_as_items(raw.get("models")))
            * len(_as_items(raw.get("generators")))
            * int(raw.get("runs", 1))
        )
        done = len(store.records(("cells",)))
        raise LookupError(f"unfinished run, {done} of {n} cells done")
    table = pd.read_csv(csv)
    text = summary_markdown(summarise(table), metrics or raw.get("metrics"), title=raw.get("name"))
    timings = store.root / "timings.csv"
    if timings.exists():
        t = pd.read_csv(timings)
        text += (
            f"\nsearch time {t['runtime_s'].sum():.2f} s, compile time {t['compile_s'].sum():.2f} s over "
            f"{len(t)} cells\n"
        )
    return text


def _as_items(v) -> list:
    return [] if v is None else [v] if isinstance(v, (str, dict)) else list(v)

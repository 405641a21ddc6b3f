"""The eccco report, always from the saved records: ``results.csv`` (long), ``summary.csv`` /
``summary.md`` (per data set: model x generator, mean ± sd), ``models.csv`` (accuracy,
coverage, q̂, train and sampling time), ``timings.csv`` and, for image data, the figure
``figures/<data>_9_to_7.png`` (rows: generators, columns: models; run 0); with
``preset: eccco-2024`` also ``paper.md`` / ``paper.csv`` (ours beside the paper's cells,
:mod:`cfx.experiments.kinds.eccco.paper`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from cfx.evaluation.registry import headline_metrics
from cfx.experiments import tables
from cfx.experiments.kinds import Report
from cfx.experiments.kinds.eccco.paper import compare, paper_markdown
from cfx.experiments.kinds.eccco.runner import FIGURE_DIGITS, available, cell_path, expected, model_path, model_run
from cfx.experiments.kinds.eccco.schema import EcccoConfig
from cfx.experiments.store import Store

__all__ = ["report", "show", "summary_markdown", "TABLE_METRICS", "KEYS"]

KEYS = ("dataset", "model", "generator")
#: The paper's columns (the metric registry's "eccco" headline table): unfaithfulness (plain mean
#: and the reference's normalisation), implausibility (L2; images also (1 − SSIM)/2), validity,
#: cost (L1) and set size; the last two over the valid counterfactuals only (its main tables).
TABLE_METRICS = headline_metrics("eccco")
_NOTE = (
    "mean ± sd over all counterfactuals of all runs (summary.csv also has sd_runs, the sd of the run means); "
    "unfaithfulness is the plain mean L2 distance to the model's conditional samples, unfaithfulness_ref the "
    "ECCCo reference's normalisation (sum over kept samples / chain count); cost = l1."
)


def summary_markdown(summary: pd.DataFrame, metrics: Sequence[str] | None = None, title: str | None = None) -> str:
    """One Markdown table per data set: rows (model, generator), columns the metrics."""
    parts = [f"# {title}\n"] if title else []
    for dataset in dict.fromkeys(summary["dataset"]):
        sub = summary[summary["dataset"] == dataset]
        cols = [
            m
            for m in (metrics or headline_metrics("eccco"))
            if m in set(sub["metric"]) and not sub[sub["metric"] == m]["mean"].isna().all()
        ]
        parts.append(
            tables.markdown(sub, ("model", "generator"), cols, title=None).replace(
                "| model |", f"| {dataset}: model |", 1
            )
        )
    parts.append(_NOTE + "\n")
    return "\n".join(parts)


def report(cfg: EcccoConfig, store: Store) -> Report:
    """The results, summary and model tables and the figures from the saved records."""
    records = [store.load(p) for p in expected(cfg)]
    table = tables.long_table(records, [*KEYS, "run"])
    summary = tables.summarise(table, KEYS)
    text = summary_markdown(summary, cfg.metrics and [*cfg.metrics, "unfaithfulness_ref"], title=cfg.name)
    skipped = [dc.key for dc in cfg.data if not available(dc)]
    if skipped:
        text += f"\nskipped (optional, data files missing): {', '.join(skipped)}\n"
    timings = pd.DataFrame([{**{k: rec[k] for k in (*KEYS, "run")}, **rec["timings"]} for rec in records])
    model_runs = sorted({model_run(cfg, q) for q in range(cfg.runs)})
    models = pd.DataFrame(
        [
            {"dataset": dc.key, "model": mc.key, "run": r, **store.load(model_path(dc.key, mc.key, r))}
            for dc in cfg.data
            if available(dc)
            for r in model_runs
            for mc in cfg.models
        ]
    )
    store.write_table("results.csv", table)
    store.write_table("summary.csv", summary)
    store.write_text("summary.md", text)
    if cfg.preset == "eccco-2024":  # the paper's cells beside ours
        store.write_text("paper.md", paper_markdown(table))
        store.write_table("paper.csv", compare(table))
    store.write_table("timings.csv", timings, float_format="%.6g")
    store.write_table("models.csv", models, float_format="%.6g")
    figures = _figures(cfg, store) if cfg.figures else []
    return Report(
        summary=text,
        out_dir=store.root,
        figures=figures,
        tables={"results": table, "summary": summary, "timings": timings, "models": models},
    )


def _figures(cfg: EcccoConfig, store: Store) -> list[Path]:
    written = []
    for dc in cfg.data:
        if not available(dc):
            continue
        first = store.load(cell_path(dc.key, cfg.models[0].key, cfg.generators[0].key, 0))
        if first.get("figure_row") is None:
            continue
        side = int(
            round(
                math.sqrt(
                    np.asarray(
                        store.load_arrays(cell_path(dc.key, cfg.models[0].key, cfg.generators[0].key, 0))["factuals"]
                    ).shape[1]
                )
            )
        )
        written.append(store.write_figure(f"{dc.key}_9_to_7", _grid_png(cfg, store, dc.key, side)))
    return written


def _grid_png(cfg: EcccoConfig, store: Store, dataset: str, side: int) -> bytes:
    """Rows: the factual, then one row per generator; columns: models (run 0, the figure row)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cfx import plotting

    rows, cols = len(cfg.generators) + 1, len(cfg.models)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols + 1.2, 1.6 * rows), squeeze=False)
    for j, mc in enumerate(cfg.models):
        for i in range(rows):
            gc = cfg.generators[max(i - 1, 0)]
            rec = store.load(cell_path(dataset, mc.key, gc.key, 0))
            arrays = store.load_arrays(cell_path(dataset, mc.key, gc.key, 0))
            k = rec["figure_row"]
            img = arrays["factuals"][k] if i == 0 else arrays["counterfactuals"][k, 0]
            ax = axes[i, j]
            ax.imshow(np.asarray(img).reshape(side, side), cmap="gray", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(mc.key, fontsize=9)
            if j == 0:
                ax.set_ylabel(f"factual {FIGURE_DIGITS[0]}" if i == 0 else gc.key, fontsize=8)
            if i > 0:
                p = float(np.asarray(arrays["target_probs"])[k, 0])
                ax.set_xlabel(f"p({FIGURE_DIGITS[1]})={p:.2f}", fontsize=7)
    fig.suptitle(f"{dataset}: turn a {FIGURE_DIGITS[0]} into a {FIGURE_DIGITS[1]}", fontsize=10)
    fig.tight_layout()
    return plotting.figure_png(fig)


def show(store: Store, raw: Mapping, metrics: Sequence[str] | None = None) -> str:
    """The summary of a finished folder (LookupError while it is unfinished)."""
    path = store.root / "summary.csv"
    if not path.exists():
        done = len(store.records(("cells",)))
        raise LookupError(f"unfinished run, {done} cells done")
    return summary_markdown(pd.read_csv(path), metrics, title=raw.get("name"))

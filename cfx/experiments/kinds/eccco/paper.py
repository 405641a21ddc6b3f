"""The paper's numbers (Altmeyer et al., AAAI 2024, appendix: all counterfactuals) and the
``paper.md`` report that puts ours beside them, cell by cell, with the ordering checks.

Unfaithfulness is in the reference's normalisation (``unfaithfulness_ref``: the sum of L2
distances to the 25 kept samples divided by 50), implausibility the mean L2 distance to the 100
nearest target-class training points; a validity is given where the paper's is below 0.99.
Ours: the mean ± sd of the run means (all counterfactuals, and valid ones only).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cfx.experiments.kinds.eccco._paper_tables import MODELS, PAPER, PAPER_VALID

__all__ = ["PAPER", "PAPER_VALID", "MODELS", "paper_markdown", "compare"]


def _run_stats(table: pd.DataFrame, dataset: str, model: str, generator: str, metric: str) -> tuple[float, float]:
    v = table[
        (table["dataset"] == dataset)
        & (table["model"] == model)
        & (table["generator"] == generator)
        & (table["metric"] == metric)
    ]["value"].to_numpy(float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan


def compare(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (data set, generator, model, metric) the paper has: paper (all and valid-only),
    ours (mean, sd of the run means over all and over valid counterfactuals), and whether ours is
    within its noise (|Δ| <= 2 sd of the run means) or within 15 % of the paper's value."""
    rows = []
    for (dataset, gen), cells in PAPER.items():
        if not ((table["dataset"] == dataset) & (table["generator"] == gen)).any():
            continue
        valid_cells = PAPER_VALID.get((dataset, gen), cells)
        for model, (u, i, v, c), (uv, iv, _, cv) in zip(MODELS, cells, valid_cells):
            for metric, paper, paper_valid in (
                ("unfaithfulness_ref", u, uv),
                ("implausibility", i, iv),
                ("validity", v if v else 1.0, 1.0),
                ("cost", c, cv),
            ):
                name = "l1" if metric == "cost" else metric  # cfx's cost column
                mean, sd = _run_stats(table, dataset, model, gen, name)
                vmean, vsd = (
                    _run_stats(table, dataset, model, gen, f"{name}_valid")
                    if metric != "validity"
                    else (math.nan, math.nan)
                )
                rows.append(
                    dict(
                        dataset=dataset,
                        generator=gen,
                        model=model,
                        metric=metric,
                        paper=paper,
                        paper_valid=paper_valid,
                        ours=mean,
                        sd_runs=sd,
                        ours_valid=vmean,
                        sd_runs_valid=vsd,
                        within=_within(mean, sd, paper),
                        within_valid=_within(vmean, vsd, paper_valid),
                        ratio=mean / paper if paper else math.nan,
                    )
                )
    return pd.DataFrame(rows)


def _within(mean: float, sd: float, paper: float) -> bool:
    noise = 2 * sd if np.isfinite(sd) else 0.0
    return bool(abs(mean - paper) <= max(0.15 * abs(paper), noise) + 1e-12)


def _fmt(mean: float, sd: float) -> str:
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.2f}" if not np.isfinite(sd) else f"{mean:.2f}±{sd:.2f}"


def _paper_best(dataset: str, model: str) -> str:
    """The generator with the lowest unfaithfulness in the paper's own table (all counterfactuals)."""
    k = MODELS.index(model) if model in MODELS else None
    vals = {g: cells[k][0] for (d, g), cells in PAPER.items() if d == dataset and k is not None}
    return min(vals, key=vals.get) if vals else "–"


def _orderings(table: pd.DataFrame, datasets) -> list[str]:
    """ECCCo the lowest unfaithfulness for every model (and what the paper's own table has); JEMs
    below MLPs (ECCCo's cells)."""
    lines = []
    for d in datasets:
        sub = table[(table["dataset"] == d) & (table["metric"] == "unfaithfulness_ref")]
        if sub.empty:
            continue
        means = sub.groupby(["model", "generator"])["value"].mean()
        for model in dict.fromkeys(sub["model"]):
            m = means[model]
            best = m.idxmin()
            ok = "yes" if best in ("eccco", "eccco_no_conformal") else "NO"
            lines.append(
                f"- {d} / {model}: lowest unfaithfulness {best} ({m[best]:.3f}; ECCCo "
                f"{m.get('eccco', math.nan):.3f}) — ECCCo lowest: {ok}; the paper's lowest: "
                f"{_paper_best(d, model)}"
            )
        for jem, mlp in (("jem", "mlp"), ("jem_ensemble", "ensemble")):
            if ("eccco" in means.get(jem, {})) and ("eccco" in means.get(mlp, {})):
                a, b = means[jem]["eccco"], means[mlp]["eccco"]
                lines.append(f"- {d}: ECCCo {jem} {a:.3f} vs {mlp} {b:.3f} — JEM below MLP: {'yes' if a < b else 'NO'}")
    return lines


def paper_markdown(table: pd.DataFrame) -> str:
    """``paper.md``: per data set a generator x model table, paper vs ours, and the orderings."""
    cmp = compare(table)
    parts = [
        "# ECCCo: ours beside the paper\n",
        "Cells: unfaithfulness (reference normalisation) / implausibility, validity in brackets when "
        "below 0.99. Ours: mean±sd of the run means, over all counterfactuals and over the valid ones "
        "only; the paper's valid-only values are its `-valid` tables. A cell is marked * when "
        "unfaithfulness or implausibility is neither within 15 % of the paper nor within 2 sd of our "
        "run means. MNIST: the paper's values are SSIM-based, ours L2 (not comparable).\n",
    ]
    if cmp.empty:
        return "\n".join(parts + ["(no data set of the paper's appendix in this run)\n"])
    for dataset in dict.fromkeys(cmp["dataset"]):
        sub = cmp[cmp["dataset"] == dataset]
        parts.append(f"## {dataset}\n")
        parts.append(
            "| generator | model | paper (all) | ours (all) | paper (valid) | ours (valid only) | cost paper / ours |"
        )
        parts.append("|---|---|---|---|---|---|---|")
        for gen in dict.fromkeys(sub["generator"]):
            for model in MODELS:
                c = sub[(sub["generator"] == gen) & (sub["model"] == model)].set_index("metric")
                if c.empty:
                    continue
                u, i, v, k = c.loc["unfaithfulness_ref"], c.loc["implausibility"], c.loc["validity"], c.loc["cost"]
                pv = f" (v.{v.paper:.2f})" if v.paper < 0.99 else ""
                ov = f" (v.{v.ours:.2f})" if np.isfinite(v.ours) and v.ours < 0.99 else ""
                flag = "" if (u.within and i.within) else " *"
                vflag = "" if (u.within_valid and i.within_valid) else " *"
                parts.append(
                    f"| {gen} | {model} | {u.paper:.2f}/{i.paper:.2f}{pv} | "
                    f"{_fmt(u.ours, u.sd_runs)} / {_fmt(i.ours, i.sd_runs)}{ov}{flag} | "
                    f"{u.paper_valid:.2f}/{i.paper_valid:.2f} | "
                    f"{_fmt(u.ours_valid, u.sd_runs_valid)} / {_fmt(i.ours_valid, i.sd_runs_valid)}{vflag} | "
                    f"{k.paper:.2f} / {_fmt(k.ours, k.sd_runs)} |"
                )
        ui = sub[sub["metric"].isin(["unfaithfulness_ref", "implausibility"])]
        parts.append(
            f"\n{int(ui['within'].sum())} of {len(ui)} unfaithfulness/implausibility values within 15 % "
            f"or 2 sd (all counterfactuals); {int(ui['within_valid'].sum())} of {len(ui)} valid-only.\n"
        )
    parts.append("## Orderings\n")
    parts.extend(_orderings(table, list(dict.fromkeys(table["dataset"]))))
    return "\n".join(parts) + "\n"

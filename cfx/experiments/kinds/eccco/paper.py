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

__all__ = ["PAPER", "MODELS", "paper_markdown", "compare"]

#: The paper's model columns.
MODELS = ("mlp", "ensemble", "jem", "jem_ensemble")

_V = None  # validity >= 0.99
#: (data set, generator) -> per model (MLP, MLP ensemble, JEM, JEM ensemble):
#: (unfaithfulness_ref, implausibility, validity or None).
PAPER = {
    ("linearly_separable", "eccco"): ((.17, .31, _V), (.17, .31, _V), (.19, .19, _V), (.12, .07, _V)),
    ("linearly_separable", "eccco_no_conformal"): ((.17, .31, _V), (.17, .31, _V), (.19, .19, _V), (.12, .07, _V)),
    ("linearly_separable", "eccco_no_energy"): ((.46, .07, _V), (.45, .07, _V), (.24, .24, _V), (.15, .08, _V)),
    ("linearly_separable", "revise"): ((.53, .18, .53), (.53, .18, .53), (.27, .18, .47), (.25, .18, .51)),
    ("linearly_separable", "schut"): ((.48, .31, _V), (.48, .32, _V), (.29, .29, _V), (.20, .27, _V)),
    ("linearly_separable", "wachter"): ((.46, .07, _V), (.45, .07, _V), (.24, .24, _V), (.14, .08, _V)),
    ("moons", "eccco"): ((1.33, .59, _V), (1.24, .56, _V), (.55, .15, _V), (.47, .13, _V)),
    ("moons", "eccco_no_energy"): ((1.50, .35, _V), (1.50, .28, _V), (.69, .42, _V), (.68, .18, _V)),
    ("moons", "revise"): ((1.49, .27, .93), (1.58, .26, .94), (.54, .31, .84), (.64, .34, .70)),
    ("moons", "schut"): ((1.58, .52, .79), (1.64, .36, .89), (.72, .46, _V), (.52, .24, _V)),
    ("moons", "wachter"): ((1.50, .35, _V), (1.51, .29, _V), (.69, .42, _V), (.67, .18, _V)),
}


def _run_stats(table: pd.DataFrame, dataset: str, model: str, generator: str, metric: str) -> tuple[float, float]:
    v = table[(table["dataset"] == dataset) & (table["model"] == model) & (table["generator"] == generator)
              & (table["metric"] == metric)]["value"].to_numpy(float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan


def compare(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (data set, generator, model, metric) the paper has: paper, ours (mean, sd of
    the run means over all and over valid counterfactuals), and whether ours is within its noise
    (|Δ| <= 2 sd of the run means) or within 15 % of the paper's value."""
    rows = []
    for (dataset, gen), cells in PAPER.items():
        if not ((table["dataset"] == dataset) & (table["generator"] == gen)).any():
            continue
        for model, (u, i, v) in zip(MODELS, cells):
            for metric, paper in (("unfaithfulness_ref", u), ("implausibility", i), ("validity", v if v else 1.0)):
                mean, sd = _run_stats(table, dataset, model, gen, metric)
                vmean, vsd = _run_stats(table, dataset, model, gen, f"{metric}_valid") if metric != "validity" \
                    else (math.nan, math.nan)
                diff = abs(mean - paper)
                noise = 2 * sd if np.isfinite(sd) else 0.0
                rows.append(dict(dataset=dataset, generator=gen, model=model, metric=metric, paper=paper, ours=mean,
                                 sd_runs=sd, ours_valid=vmean, sd_runs_valid=vsd,
                                 within=bool(diff <= max(0.15 * abs(paper), noise) + 1e-12),
                                 ratio=mean / paper if paper else math.nan))
    return pd.DataFrame(rows)


def _fmt(mean: float, sd: float) -> str:
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.2f}" if not np.isfinite(sd) else f"{mean:.2f}±{sd:.2f}"


def _orderings(table: pd.DataFrame, datasets) -> list[str]:
    """ECCCo the lowest unfaithfulness for every model; JEMs below MLPs (ECCCo's cells)."""
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
            lines.append(f"- {d} / {model}: lowest unfaithfulness {best} ({m[best]:.3f}; ECCCo "
                         f"{m.get('eccco', math.nan):.3f}) — ECCCo lowest: {ok}")
        for jem, mlp in (("jem", "mlp"), ("jem_ensemble", "ensemble")):
            if ("eccco" in means.get(jem, {})) and ("eccco" in means.get(mlp, {})):
                a, b = means[jem]["eccco"], means[mlp]["eccco"]
                lines.append(f"- {d}: ECCCo {jem} {a:.3f} vs {mlp} {b:.3f} — JEM below MLP: "
                             f"{'yes' if a < b else 'NO'}")
    return lines


def paper_markdown(table: pd.DataFrame) -> str:
    """``paper.md``: per data set a generator x model table, paper vs ours, and the orderings."""
    cmp = compare(table)
    parts = ["# ECCCo: ours beside the paper\n",
             "Cells: unfaithfulness (reference normalisation) / implausibility, validity in brackets when "
             "below 0.99. Ours: mean±sd of the run means, over all counterfactuals and over the valid ones "
             "only. A cell is marked * when unfaithfulness or implausibility is neither within 15 % of the "
             "paper nor within 2 sd of our run means.\n"]
    if cmp.empty:
        return "\n".join(parts + ["(no data set of the paper's appendix in this run)\n"])
    for dataset in dict.fromkeys(cmp["dataset"]):
        sub = cmp[cmp["dataset"] == dataset]
        parts.append(f"## {dataset}\n")
        parts.append("| generator | model | paper | ours (all) | ours (valid only) |")
        parts.append("|---|---|---|---|---|")
        for gen in dict.fromkeys(sub["generator"]):
            for model in MODELS:
                c = sub[(sub["generator"] == gen) & (sub["model"] == model)].set_index("metric")
                if c.empty:
                    continue
                u, i, v = c.loc["unfaithfulness_ref"], c.loc["implausibility"], c.loc["validity"]
                pv = f" (v.{v.paper:.2f})" if v.paper < 0.99 else ""
                ov = f" (v.{v.ours:.2f})" if np.isfinite(v.ours) and v.ours < 0.99 else ""
                flag = "" if (u.within and i.within) else " *"
                parts.append(f"| {gen} | {model} | {u.paper:.2f}/{i.paper:.2f}{pv} | "
                             f"{_fmt(u.ours, u.sd_runs)} / {_fmt(i.ours, i.sd_runs)}{ov}{flag} | "
                             f"{_fmt(u.ours_valid, u.sd_runs_valid)} / {_fmt(i.ours_valid, i.sd_runs_valid)} |")
        n_cells = int(len(sub[sub["metric"] != "validity"]))
        n_ok = int(sub[sub["metric"] != "validity"]["within"].sum())
        parts.append(f"\n{n_ok} of {n_cells} unfaithfulness/implausibility values within 15 % or 2 sd.\n")
    parts.append("## Orderings\n")
    parts.extend(_orderings(table, list(dict.fromkeys(table["dataset"]))))
    return "\n".join(parts) + "\n"

"""The ct kind's tables and figure under the pooled evaluation (split from :mod:`.reference`).

:data:`PAPER` holds the paper's numbers (SaTML 2026, main table and appendix); :func:`pool_reductions`
builds ours from saved records (per-round ratios CT/BL, the reference's aggregation);
:func:`paper_markdown` puts the two side by side; :func:`figures` draws the learned energy.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pandas as pd

from cfx.experiments.tables import pipe_table


def _load_paper(name: str = "paper.json") -> dict[str, dict[str, tuple]]:
    """The paper's numbers, kept as data in ``paper.json`` next to this module: data set -> the main
    table's % reductions ``ip``, ``ip_star``, ``cost`` as (value, * = its 99 % interval excludes 0),
    and the appendix's CI table as (CT, BL): absolute ``ip_abs``, ``validity``, ``accuracy``."""
    raw = json.loads(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))
    return {data: {k: tuple(v) for k, v in cells.items()} for data, cells in raw.items()}


#: data set -> metric -> (value, starred) or (CT, BL): see :func:`_load_paper`
PAPER = _load_paper()


def pool_reductions(cfg, store, cell) -> pd.DataFrame:
    """The paper's table from saved records: per data set, mode and variant, % reductions of IP,
    IP* and cost vs the baseline (per-round ratios, pooled over training runs), absolute values,
    validity and accuracy of both. With several modes (other than ``single``) also a ``pooled`` row:
    per run and round the mean over those modes, as the reference pools its mutability grid's
    settings for the cost column."""
    rows = []
    for dc in cfg.data:
        loaded = {
            (v, mode): [
                (store.load(cell(dc.key, v, mode, r))["metrics"], store.load_arrays(cell(dc.key, v, mode, r)))
                for r in range(cfg.runs)
            ]
            for v in cfg.variants
            for mode in cfg.modes
        }
        for variant in [v for v in cfg.variants if v != "baseline"]:
            for mode in cfg.modes:
                rows.append(_row(dc.key, mode, variant, loaded[("baseline", mode)], loaded[(variant, mode)]))
            pooled = [m for m in cfg.modes if m != "single"]  # the mutability grid's settings
            if len(pooled) > 1:
                pool = lambda v: [_mean_over_modes([loaded[(v, mode)][r] for mode in pooled]) for r in range(cfg.runs)]
                rows.append(_row(dc.key, "pooled", variant, pool("baseline"), pool(variant)))
    return pd.DataFrame(rows)


def _mean_over_modes(cells: list) -> tuple:
    """One cell from several modes' cells: per round the mean over modes; the cost as the reference's
    ``aggregate_ce_evaluation`` pools a grid's settings: per (λ, round) the mean over every setting's valid
    counterfactuals (the modes' means weighted by their valid counts), then the mean over λ."""
    metrics = {k: {"mean": float(np.mean([m[k]["mean"] for m, _ in cells]))} for k in ("accuracy", "validity")}
    keys = [k for k in ("ip", "ip_star", "cost", "ip_star_alt") if all(f"round_{k}" in a for _, a in cells)]
    arrays = {f"round_{k}": np.nanmean(np.stack([a[f"round_{k}"] for _, a in cells]), axis=0) for k in keys}
    if all("lam_cost" in a for _, a in cells):
        n = np.stack([a["pool_valid"].sum(axis=2) for _, a in cells]).astype(np.float64)  # (mode, λ, J)
        mu = np.nan_to_num(np.stack([a["lam_cost"] for _, a in cells]))
        with np.errstate(invalid="ignore", divide="ignore"):
            per = (n * mu).sum(0) / n.sum(0)
        arrays["round_cost"] = np.nanmean(np.where(n.sum(0) > 0, per, np.nan), axis=0)
    return metrics, arrays


def _row(data: str, mode: str, variant: str, base: list, treated: list) -> dict:
    from cfx.training.pool import pooled_reduction

    row = {"dataset": data, "mode": mode, "variant": variant, "runs": len(base)}
    for m in [k for k in ("ip", "ip_star", "cost", "ip_star_alt") if f"round_{k}" in base[0][1]]:
        b = np.concatenate([a[f"round_{m}"] for _, a in base])
        t = np.concatenate([a[f"round_{m}"] for _, a in treated])
        red = pooled_reduction(b, t)
        row.update(
            {
                f"{m}_reduction": red["reduction"],
                f"{m}_se": red["se"],
                f"{m}_low": red["low"],
                f"{m}_high": red["high"],
                f"{m}_sig": red["significant"],
                f"{m}_baseline": float(np.nanmean(b)),
                f"{m}_treated": float(np.nanmean(t)),
            }
        )
        runs = [pooled_reduction(a0[f"round_{m}"], a1[f"round_{m}"]) for (_, a0), (_, a1) in zip(base, treated)]
        per_run = [r["reduction"] for r in runs]
        row[f"{m}_per_run"] = " / ".join(f"{v:.1f}" for v in per_run)
        # the paper's basis: one trained model per cell, ± over its rounds; and the spread across runs
        row[f"{m}_se_run"] = float(np.nanmean([r["se"] for r in runs]))
        row[f"{m}_sd_runs"] = float(np.std(per_run, ddof=1)) if len(per_run) > 1 else float("nan")
        # the paper's * per cell: one model's 99 % interval of its rounds' differences; here per training run
        row[f"{m}_sig_runs"] = int(sum(r["significant"] for r in runs))
    for m in ("accuracy", "validity"):
        row[f"{m}_baseline"] = float(np.mean([metrics[m]["mean"] for metrics, _ in base]))
        row[f"{m}_treated"] = float(np.mean([metrics[m]["mean"] for metrics, _ in treated]))
    return row


def _fmt(v, lo=None, hi=None) -> str:
    if v is None or not np.isfinite(v):
        return "nan"
    return f"{v:.1f}" if lo is None or not np.isfinite(lo) else f"{v:.1f} [{lo:.1f}, {hi:.1f}]"


def reduction_markdown(df: pd.DataFrame, title: str) -> str:
    """The ct kind's table for its own (single-search) evaluation protocol."""
    head = ["dataset", "mode", "variant", "IP red. % [95% CI]", "IP* red. % [95% CI]"]
    head += [f"{m}{s}" for m in ("acc.", "valid.", "IG share") for s in (" base", "")]  # baseline, treated
    rows = (
        [
            r.dataset,
            r.mode,
            r.variant,
            _fmt(r.ip_reduction, r.ip_low, r.ip_high),
            _fmt(r.ip_star_reduction, r.ip_star_low, r.ip_star_high),
            *(f"{v:.3f}" for v in (r.accuracy_baseline, r.accuracy, r.validity_baseline, r.validity)),
            *(f"{v:.3f}" for v in (r.sensitivity_baseline, r.sensitivity)),
        ]
        for r in df.itertuples()
    )
    lines = [f"# {title}: CT vs baseline", "", *pipe_table(head, rows)]
    lines += [
        "",
        "Reduction = 100·(1 − treated / baseline); positive is better. IG share: integrated-gradients "
        "attribution share of the protected feature (lower = the model relies less on it).",
    ]
    return "\n".join(lines) + "\n"


def _cell_fmt(v, se, sig, se_run=float("nan"), sd_runs=float("nan"), sig_runs=None, runs=1) -> str:
    if not np.isfinite(v):
        return "nan"
    within = f"; ±{se_run:.1f} per run, ±{sd_runs:.1f} across runs" if np.isfinite(sd_runs) else ""
    starred = f"; * in {sig_runs}/{runs} runs" if sig_runs is not None and runs > 1 else ""
    return f"{v:.1f}{'*' if sig else ''} (±{se:.0f}{within}{starred})"


def paper_markdown(df: pd.DataFrame, title: str) -> str:
    """Ours beside the paper's, one row per (data set, mode, variant)."""
    ours = ("IP red. %", "IP* red. %", "cost red. %", "IP CT / BL", "validity CT / BL", "accuracy CT / BL")
    head = ["data", "mode", "variant", *(h for c in ours for h in (c, "paper")), "IP red. per run"]
    rows = []
    for r in df.itertuples():
        p = PAPER.get(r.dataset, {})
        pap = lambda k: f"{p[k][0]:.2f}{'*' if p[k][1] else ''}" if k in p else "–"
        pair = lambda k: f"{p[k][0]:.2f} / {p[k][1]:.2f}" if k in p else "–"
        rows.append(
            [
                r.dataset,
                r.mode,
                r.variant,
                _cell_fmt(r.ip_reduction, r.ip_se, r.ip_sig, r.ip_se_run, r.ip_sd_runs, r.ip_sig_runs, r.runs),
                pap("ip"),
                _cell_fmt(
                    r.ip_star_reduction,
                    r.ip_star_se,
                    r.ip_star_sig,
                    r.ip_star_se_run,
                    r.ip_star_sd_runs,
                    r.ip_star_sig_runs,
                    r.runs,
                ),
                pap("ip_star"),
                _cell_fmt(r.cost_reduction, r.cost_se, r.cost_sig, sig_runs=r.cost_sig_runs, runs=r.runs),
                pap("cost"),
                f"{r.ip_treated:.2f} / {r.ip_baseline:.2f}",
                pair("ip_abs"),
                f"{r.validity_treated:.2f} / {r.validity_baseline:.2f}",
                pair("validity"),
                f"{r.accuracy_treated:.3f} / {r.accuracy_baseline:.3f}",
                pair("accuracy"),
                r.ip_per_run,
            ]
        )
    lines = [f"# {title}: ours beside the paper (SaTML 2026)", "", *pipe_table(head, rows)]
    lines += [
        "",
        "Reduction = 100·(1 − mean over rounds of CT/BL), (±) = 100·sd of the per-round ratios (all runs' "
        "rounds together; 'per run': the mean of each training run's own sd, the paper's basis: one trained "
        "model per cell; 'across runs': the sd of the runs' reductions), * = the "
        "99 % quantile interval of the per-round differences excludes 0 (the reference's `cidiff`; over all runs' "
        "rounds, and 'k/R runs': in how many training runs that one model's own interval excludes 0, the paper's "
        "basis). "
        "IP/IP* over valid counterfactuals (p(target) >= 0.5), pooled over the energy weights. "
        "The paper's IP/IP* are the `single` rows' (its all-mutable grid with its own τ and λ_reg), its "
        "cost the `pooled` rows' (the mutability grid's settings pooled; `single` is not in `pooled`).",
    ]
    return "\n".join(lines) + "\n"


def figures(cfg, store, cell) -> list:
    """``figures/<data>_energy.png``: the learned energy E(x|y=1) = −f_1(x) of the baseline and
    of each other variant (first mode, run 0) on the 2-D sets, with the training data."""
    from matplotlib.figure import Figure  # a standalone figure: the user's backend is left alone

    from cfx import plotting

    out = []
    for dc in cfg.data:
        arrays = {v: store.load_arrays(cell(dc.key, v, cfg.modes[0], 0)) for v in cfg.variants}
        if "energy" not in arrays["baseline"]:
            continue
        fig = Figure(figsize=(4.4 * len(cfg.variants), 3.8))
        axes = fig.subplots(1, len(cfg.variants), squeeze=False)
        for ax, (variant, a) in zip(axes[0], arrays.items()):
            e = a["energy"][..., 1]
            cs = ax.contourf(a["energy_xx"], a["energy_yy"], e, levels=20, cmap="viridis")
            ax.contour(
                a["energy_xx"],
                a["energy_yy"],
                a["energy"][..., 1] - a["energy"][..., 0],
                levels=[0.0],
                colors="white",
                linewidths=1.5,
            )
            ax.scatter(a["X"][:, 0], a["X"][:, 1], c=a["y"], s=4, cmap="coolwarm", edgecolors="none", alpha=0.7)
            fig.colorbar(cs, ax=ax, shrink=0.8)
            ax.set_title(f"{dc.key}: {variant}, E(x|y=1) = -f_1(x)", fontsize=9)
        fig.tight_layout()
        out.append(store.write_figure(f"{dc.key}_energy", plotting.figure_png(fig)))
    return out

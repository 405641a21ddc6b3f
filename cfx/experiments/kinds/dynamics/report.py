"""The dynamics kind's report: round records -> long table, final-round means ± sd, summary.md
and one figure per data set and metric."""

from __future__ import annotations

import math

import numpy as np

from cfx.evaluation.registry import headline_metrics
from cfx.experiments.tables import pipe_table

FIGURE_METRICS = (
    "mmd_domain",
    "mmd_model",
    "mmd_model_grid",
    "disagreement",
    "decisiveness",
    "f1_change",
    "param_change",
    "validity",
    "cost_l1",
)
_P = {"mmd_domain": "p_domain", "mmd_model": "p_model", "mmd_model_grid": "p_model_grid"}


def _frames(paths, store):
    import pandas as pd

    rows, stopped, seconds = [], [], {}
    for path in paths:
        rec = store.load(path)
        seconds[(rec["dataset"], rec["model"])] = rec["seconds"]
        stopped += [{"dataset": rec["dataset"], "model": rec["model"], **s} for s in rec["stopped"]]
        for r in rec["history"]:
            base = {
                "dataset": rec["dataset"],
                "model": rec["model"],
                "generator": r["generator"],
                "repetition": r["repetition"],
                "round": r["round"],
            }
            rows += [
                {**base, "metric": k, "value": float(v)}
                for k, v in r.items()
                if k not in base and isinstance(v, (int, float)) and v is not None
            ]
    return pd.DataFrame(rows), stopped, seconds


def _final(long):
    """Per (dataset, model, generator, metric): the last evaluated round of every repetition,
    mean ± sd over repetitions."""
    evaluated = long[long["metric"] == "mmd_domain"].groupby(["dataset", "model", "generator", "repetition"])["round"]
    last = evaluated.max().rename("last").reset_index()
    merged = long.merge(last, on=["dataset", "model", "generator", "repetition"])
    final = merged[merged["round"] == merged["last"]]
    out = (
        final.groupby(["dataset", "model", "generator", "metric"], sort=False)["value"]
        .agg(mean="mean", sd=lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else math.nan, n="count")
        .reset_index()
    )
    rounds = last.groupby(["dataset", "model", "generator"])["last"].max().rename("round").reset_index()
    return out.merge(rounds, on=["dataset", "model", "generator"])


def _cell(lookup, key, metric) -> str:
    mean, sd = lookup.get((*key, metric), (math.nan, math.nan))
    if mean is None or math.isnan(mean):
        return "nan"
    text = f"{mean:.3g}" if math.isnan(sd) else f"{mean:.3g} ± {sd:.2g}"
    if metric in _P:
        p = lookup.get((*key, _P[metric]), (math.nan,))[0]
        text += f" (p {p:.2f})"
    return text


def _skipped(long) -> list[str]:
    """One line per (data, model, repetition) with rounds skipped for an empty draw (n = 0)."""
    sk = long[(long["metric"] == "skipped") & (long["value"].astype(float) > 0)]
    out = []
    for (d, m, r), g in sk.groupby(["dataset", "model", "repetition"]):
        rounds = sorted(set(int(t) for t in g["round"]))
        out.append(
            f"- {d}/{m} repetition {r}: the draw was empty (n = round(mu*|pool|) = 0) in {len(rounds)} "
            f"rounds, from round {rounds[0]}; those rounds moved nothing and retrained nothing"
        )
    return out


def _markdown(final, title: str, stopped, seconds, skipped=()) -> str:
    lookup = {(r.dataset, r.model, r.generator, r.metric): (r.mean, r.sd) for r in final.itertuples()}
    keys = list(dict.fromkeys(zip(final["dataset"], final["model"], final["generator"])))
    present = set(final["metric"])
    cols = [m for m in headline_metrics("dynamics") if m in present]
    rounds = {(r.dataset, r.model, r.generator): r.round for r in final.itertuples()}
    rows = ([*k, rounds[k], *(_cell(lookup, k, m) for m in cols)] for k in keys)
    lines = [f"# {title}", "", *pipe_table(["dataset", "model", "generator", "round", *cols], rows)]
    lines += ["", "Final evaluated round, mean ± sd over repetitions; (p ...) the mean permutation p-value."]
    for s in stopped:
        lines.append(
            f"- {s['dataset']}/{s['model']} repetition {s['repetition']} stopped at round {s['round']}: {s['reason']}"
        )
    lines += list(skipped)
    total = sum(seconds.values())
    lines.append(
        f"\nSimulation time {total:.1f} s in total ("
        + ", ".join(f"{d}/{m} {v:.1f} s" for (d, m), v in seconds.items())
        + ")"
    )
    return "\n".join(lines) + "\n"


def _figures(cfg, store, long) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cfx import plotting

    written = []
    for dc in cfg.data:
        sub = long[long["dataset"] == dc.key]
        for metric in FIGURE_METRICS:
            m = sub[sub["metric"] == metric]
            if m.empty:
                continue
            fig, axes = plt.subplots(1, len(cfg.models), figsize=(4 * len(cfg.models), 3.2), squeeze=False, sharey=True)
            for ax, mc in zip(axes[0], cfg.models):
                for gc in cfg.generators:
                    g = m[(m["model"] == mc.key) & (m["generator"] == gc.key)]
                    stats = g.groupby("round")["value"].agg(["mean", "std"]).reset_index()
                    (line,) = ax.plot(stats["round"], stats["mean"], marker="o", ms=3, label=gc.key)
                    ax.fill_between(
                        stats["round"],
                        stats["mean"] - stats["std"].fillna(0),
                        stats["mean"] + stats["std"].fillna(0),
                        color=line.get_color(),
                        alpha=0.15,
                    )
                ax.set_title(mc.key)
                ax.set_xlabel("round")
            axes[0][0].set_ylabel(metric)
            axes[0][-1].legend(fontsize=7)
            fig.suptitle(f"{dc.key}: {metric}")
            fig.tight_layout()
            written.append(store.write_figure(f"{dc.key}_{metric}", plotting.figure_png(fig)))
            plt.close(fig)
    return written

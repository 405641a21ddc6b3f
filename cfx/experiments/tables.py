"""Tables: the long results table, pooled mean ± sd summaries and their Markdown.

A long table has one row per (key columns..., metric): ``value`` the mean over that
record's items (counterfactuals, factuals, ...), ``sd`` their sample sd and ``n`` how many.
:func:`summarise` pools the rows of each (keys, metric) group over runs *exactly* (the mean
and sd of the union of the groups, from each group's mean, sd and n); :func:`markdown`
pivots a summary into a ``mean ± sd`` table.

Example::

    table = long_table([{"dataset": "moons", "run": 0, "metrics": {"l1": {"mean": .3, "sd": .1, "n": 6}}}],
                       keys=["dataset", "run"])
    summary = summarise(table, keys=["dataset"])
    print(markdown(summary, keys=["dataset"], metrics=["l1"]))
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["pooled", "long_table", "summarise", "markdown", "pipe_table", "format_mean_sd"]


def pooled(means: Sequence[float], sds: Sequence[float], ns: Sequence[int]) -> tuple[float, float, int]:
    """Mean and sample sd of the union of groups given each group's mean, sd (ddof=1) and size.

    mean = Σ n_i m_i / N;  var = (Σ (n_i − 1) s_i² + Σ n_i (m_i − mean)²) / (N − 1).
    Groups with NaN means are skipped; a NaN sd (one value) counts as zero spread.
    """
    rows = [
        (m, 0.0 if (s is None or math.isnan(s)) else s, n)
        for m, s, n in zip(means, sds, ns)
        if m is not None and not math.isnan(m) and n > 0
    ]
    if not rows:
        return math.nan, math.nan, 0
    N = sum(n for _, _, n in rows)
    mean = sum(n * m for m, _, n in rows) / N
    if N < 2:
        return mean, math.nan, N
    ss = sum((n - 1) * s * s + n * (m - mean) ** 2 for m, s, n in rows)
    return mean, math.sqrt(max(ss, 0.0) / (N - 1)), N


def long_table(records: Iterable[Mapping], keys: Sequence[str]) -> pd.DataFrame:
    """One row per (record, metric) from records ``{**keys, "metrics": {name: {mean, sd, n}}}``.

    Columns: ``keys``, then metric, value, sd, n.
    """
    rows = []
    for rec in records:
        for metric, v in rec["metrics"].items():
            rows.append({**{k: rec[k] for k in keys}, "metric": metric, "value": v["mean"], "sd": v["sd"], "n": v["n"]})
    return pd.DataFrame(rows, columns=[*keys, "metric", "value", "sd", "n"])


def summarise(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Pool each (keys, metric) group of a long table over its rows (runs): ``mean``, ``sd`` and
    ``n`` over all their items (exactly, see :func:`pooled`), ``runs`` and the sd of the run
    means ``sd_runs``."""
    keys = [*keys, "metric"]
    out = []
    for key, g in table.groupby(keys, sort=False):
        mean, sd, n = pooled(g["value"].tolist(), g["sd"].tolist(), g["n"].astype(int).tolist())
        runs = g["value"].to_numpy(float)
        out.append(
            dict(
                zip(keys, key),
                mean=mean,
                sd=sd,
                n=n,
                runs=len(g),
                sd_runs=float(np.std(runs, ddof=1)) if len(g) > 1 else math.nan,
            )
        )
    return pd.DataFrame(out, columns=keys + ["mean", "sd", "n", "runs", "sd_runs"])


def format_mean_sd(mean: float, sd: float) -> str:
    """``0.123 ± 0.045`` (3 and 2 significant digits); ``nan`` for a missing mean."""
    if mean is None or math.isnan(mean):
        return "nan"
    return f"{mean:.3g}" if sd is None or math.isnan(sd) else f"{mean:.3g} ± {sd:.2g}"


def markdown(
    summary: pd.DataFrame,
    keys: Sequence[str],
    metrics: Sequence[str] | None = None,
    *,
    title: str | None = None,
    note: str | None = None,
) -> str:
    """Markdown pivot of a summary: one row per ``keys`` tuple, one column per metric.

    ``metrics`` picks and orders the columns (those absent from the summary are dropped; none
    present: every metric of the summary).
    """
    present = list(dict.fromkeys(summary["metric"]))
    cols = [m for m in (metrics or present) if m in present] or present
    index = list(dict.fromkeys(zip(*(summary[k] for k in keys))))
    lookup = {(*(getattr(r, k) for k in keys), r.metric): (r.mean, r.sd) for r in summary.itertuples()}
    rows = ([*ix, *(format_mean_sd(*lookup.get((*ix, m), (math.nan, math.nan))) for m in cols)] for ix in index)
    lines = [f"# {title}", ""] if title else []
    lines += pipe_table([*keys, *cols], rows)
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def pipe_table(head: Sequence[str], rows: Iterable[Sequence]) -> list[str]:
    """The lines of a Markdown pipe table: the header, its rule, one line per row (cells ``str``-ed)."""
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(map(str, r)) + " |" for r in rows),
    ]

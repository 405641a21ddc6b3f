"""docs/ct.md's table from finished ``kind: ct`` runs of the pooled evaluation (``preset: ct-2026``).

    python experiments/ct_paper_table.py RESULTS_DIR [RESULTS_DIR ...]

Per data set, IP and IP* from mode ``single`` and the cost from mode ``protected`` (the paper's table), CT
vs the baseline: the % reduction over all runs' rounds, each training run's own reduction with its 99 %
quantile interval of the per-round reductions (one trained model per cell: the paper's basis; * = the
interval of the per-round differences BL_j − CT_j excludes 0, the reference's ``cidiff``), absolute IP,
validity and accuracy (CT / BL). The paper's values are :data:`cfx.experiments.kinds.ct._tables.PAPER`'s.
"""

from __future__ import annotations

import sys

import numpy as np
import yaml

from cfx.experiments.kinds.ct._tables import PAPER
from cfx.experiments.runs import cell_path
from cfx.experiments.store import Store
from cfx.training.pool import pooled_reduction


def _runs(store, data, mode, metric, n_runs):
    out = []
    for r in range(n_runs):
        cells = [store.load_arrays(cell_path(data, v, mode, run=r)) for v in ("baseline", "ct")]
        if any(a is None for a in cells):  # the mode was not run
            return []
        b, t = (a[f"round_{metric}"] for a in cells)
        out.append((b, t, pooled_reduction(b, t)))
    return out


def _cell(runs) -> str:
    if not runs:
        return "–"
    pooled = pooled_reduction(np.concatenate([b for b, _, _ in runs]), np.concatenate([t for _, t, _ in runs]))
    star = lambda d: "*" if d["significant"] else ""
    each = "; ".join(f"{d['reduction']:.1f}{star(d)} [{d['low']:.1f}, {d['high']:.1f}]" for _, _, d in runs)
    return f"**{pooled['reduction']:.1f}**{star(pooled)} ({each})"


def _mean(store, data, variant, mode, key, n_runs):
    return np.mean([store.load(cell_path(data, variant, mode, run=r))["metrics"][key]["mean"] for r in range(n_runs)])


def table(folder: str) -> str:
    cfg = yaml.safe_load(open(f"{folder}/config.yaml"))
    store, n = Store(folder), int(cfg.get("runs", 1))
    lines = []
    for item in cfg["data"]:
        data = item.get("label") or item["name"] if isinstance(item, dict) else item
        p = PAPER.get(data, {})
        pap = lambda k: f"{p[k][0]:.2f}{'*' if p[k][1] else ''}" if k in p else "–"
        pair = lambda k: f"{p[k][0]:.2f} / {p[k][1]:.2f}" if k in p else "–"
        both = lambda k, mode="single": (
            f"{_mean(store, data, 'ct', mode, k, n):.2f} / {_mean(store, data, 'baseline', mode, k, n):.2f}"
        )
        ip = np.mean([np.nanmean(t) for _, t, _ in _runs(store, data, "single", "ip", n)])
        ip_b = np.mean([np.nanmean(b) for b, _, _ in _runs(store, data, "single", "ip", n)])
        cells = [
            data,
            _cell(_runs(store, data, "single", "ip", n)),
            pap("ip"),
            _cell(_runs(store, data, "single", "ip_star", n)),
            pap("ip_star"),
            _cell(_runs(store, data, "protected", "cost", n)),
            pap("cost"),
            f"{ip:.2f} / {ip_b:.2f}",
            pair("ip_abs"),
            both("validity"),
            pair("validity"),
            both("accuracy"),
            pair("accuracy"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    head = (
        "| data | IP −% (runs: reduction [99 % interval]) | paper | IP* −% | paper | cost −% (protected) | paper | "
        "IP CT / BL | paper | validity CT / BL | paper | accuracy CT / BL | paper |"
    )
    print(head + "\n|" + "---|" * 13)
    for folder in sys.argv[1:]:
        print(table(folder))

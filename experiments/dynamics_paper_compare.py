"""Our round-50 values beside the paper's (Altmeyer et al., SaTML 2023), read off its charts.

    python experiments/dynamics_paper_compare.py RESULTS_DIR [--markdown]

RESULTS_DIR: the output of ``cfx run configs/dynamics_paper.yaml`` (or ``_mitigation``).
Readings (by eye, to about ±0.003 on the MMD axes, ±0.005 on the others): the overlapping
cells of paper/www/synthetic_results.png and mitigation_synthetic_results.png (the paper's
figures), and the other data sets from the companion repository's rendered appendix
(_freeze/sections/experiments/synthetic, commit 0802a13, 2023-01-23: the error-bar chart per
data set, made from the same runs). Metrics: domain = mmd_domain, grid = mmd_model_grid (the
paper's "MMD (model)"), model = mmd_model (PP-MMD on the data), disagreement, f1 = f1_change
(the paper's "Performance", macro F1), decis = decisiveness_code, pert = param_change.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import numpy as np

METRICS = {
    "domain": "mmd_domain",
    "grid": "mmd_model_grid",
    "model": "mmd_model",
    "disagreement": "disagreement",
    "f1": "f1_change",
    "decis": "decisiveness_code",
    "pert": "param_change",
}
_ORDER = ("domain", "grid", "model", "disagreement", "f1", "decis", "pert")
_GEN = {"DICE": "dice", "Generic": "generic", "Greedy": "greedy", "REVISE": "latent"}


def _rows(text: str) -> dict:
    out = {}
    for line in text.strip().splitlines():
        data, model, gen, *vals = line.split()
        out[(data, model, _GEN.get(gen, gen))] = dict(zip(_ORDER, map(float, vals)))
    return out


#: data model generator: domain grid model disagreement f1 decis pert (read off the charts)
SYNTHETIC = _rows("""
overlapping linear DICE .105 .035 .059 .175 -.117 1.06 2.02
overlapping linear Generic .111 .035 .062 .179 -.123 1.10 2.07
overlapping linear Greedy .089 .012 .013 .086 -.041 .11 .63
overlapping linear REVISE .110 .004 .004 .048 -.008 .60 1.10
overlapping mlp DICE .100 .0125 .010 .076 -.026 .59 .30
overlapping mlp Generic .092 .011 .012 .080 -.033 .56 .33
overlapping mlp Greedy .081 .0125 .008 .063 -.026 .67 .21
overlapping mlp REVISE .100 .000 .003 .043 -.009 .53 .12
overlapping ensemble DICE .098 .009 .011 .081 -.035 .58 .41
overlapping ensemble Generic .104 .009 .011 .084 -.036 .53 .39
overlapping ensemble Greedy .076 .0095 .0063 .055 -.021 .69 .22
overlapping ensemble REVISE .102 .0006 .0027 .041 -.015 .52 .20
linearly_separable linear DICE .31 .275 .037 .096 -.090 1.88 6.9
linearly_separable linear Generic .305 .26 .038 .097 -.090 1.9 6.9
linearly_separable linear Greedy .32 .055 .0145 .053 -.054 1.27 8.7
linearly_separable linear REVISE .000 .073 .000 .007 -.014 .20 11.5
linearly_separable mlp DICE .152 .23 -.0009 .0006 -.003 .010 .27
linearly_separable mlp Generic .138 .215 -.0009 .0006 -.003 .012 .28
linearly_separable mlp Greedy .305 .208 -.0007 .0092 -.021 .049 .16
linearly_separable mlp REVISE .000 .02 -.0008 .0036 -.010 .018 .34
linearly_separable ensemble DICE .137 .235 -.0009 .0004 -.002 .008 .30
linearly_separable ensemble Generic .125 .225 -.0009 .0002 .000 .0085 .30
linearly_separable ensemble Greedy .31 .205 -.0008 .0072 -.020 .024 .175
linearly_separable ensemble REVISE .000 .022 -.0008 .0036 -.010 .019 .335
moons linear DICE .091 .083 .089 .205 -.160 2.1 2.02
moons linear Generic .096 .091 .094 .21 -.167 2.2 2.05
moons linear Greedy .087 .025 .026 .127 -.077 .65 1.48
moons linear REVISE .110 .006 .005 .065 -.027 .08 .83
moons mlp DICE .130 .011 -.0008 .003 -.006 .012 .40
moons mlp Generic .122 .006 -.0008 .004 -.006 .022 .37
moons mlp Greedy .137 .030 .0008 .024 -.034 .20 .31
moons mlp REVISE .094 .001 -.0009 .002 -.006 .012 .42
moons ensemble DICE .141 .0135 -.0008 .005 -.012 .055 .42
moons ensemble Generic .134 .0105 -.0006 .008 -.015 .068 .39
moons ensemble Greedy .135 .015 .0002 .017 -.026 .205 .38
moons ensemble REVISE .101 .0015 -.0008 .002 -.005 .018 .37
circles linear DICE -.0031 .000 .000 .017 -.014 .001 .0006
circles linear Generic -.0031 .000 .000 .000 .000 .000 .000
circles linear Greedy -.0028 .0004 .0004 .30 -.18 .13 .022
circles linear REVISE -.0028 .0004 .0004 .31 -.18 .125 .0225
circles mlp DICE -.0028 -.0002 -.0009 .000 .000 .004 .010
circles mlp Generic -.0028 -.0002 -.0009 .000 .000 .0033 .011
circles mlp Greedy -.0028 -.0003 -.0009 .000 .000 .0034 .0103
circles mlp REVISE -.0031 -.0003 -.0009 .000 .000 .0038 .0123
circles ensemble DICE -.0028 -.0003 -.0009 .000 .000 .0027 .0122
circles ensemble Generic -.0028 -.0003 -.0009 .000 .000 .002 .0128
circles ensemble Greedy -.0028 -.0002 -.0009 .000 .000 .0071 .0083
circles ensemble REVISE -.0031 -.0003 -.0009 .000 .000 .0041 .0127
""")

#: the paper's mitigation figure (overlapping): domain, grid ("MMD (model)"), f1 ("Performance")
MITIGATION = {
    (d, m, g): dict(zip(("domain", "grid", "f1"), v))
    for (d, m, g), v in {
        ("overlapping", "linear", "claproar"): (0.019, 0.000, 0.000),
        ("overlapping", "linear", "generic"): (0.102, 0.035, -0.125),
        ("overlapping", "linear", "generic_conservative"): (0.048, 0.0015, 0.000),
        ("overlapping", "linear", "gravitational"): (0.063, 0.000, 0.000),
        ("overlapping", "linear", "latent"): (0.110, 0.005, -0.012),
        ("overlapping", "mlp", "claproar"): (0.020, 0.000, -0.013),
        ("overlapping", "mlp", "generic"): (0.095, 0.011, -0.028),
        ("overlapping", "mlp", "generic_conservative"): (0.052, 0.001, -0.005),
        ("overlapping", "mlp", "gravitational"): (0.060, 0.000, -0.012),
        ("overlapping", "mlp", "latent"): (0.105, 0.000, -0.010),
        ("overlapping", "ensemble", "claproar"): (0.020, 0.000, -0.018),
        ("overlapping", "ensemble", "generic"): (0.101, 0.009, -0.042),
        ("overlapping", "ensemble", "generic_conservative"): (0.055, 0.001, -0.010),
        ("overlapping", "ensemble", "gravitational"): (0.066, 0.000, -0.018),
        ("overlapping", "ensemble", "latent"): (0.106, 0.000, -0.016),
    }.items()
}

#: the paper's latent-space mitigation figure (paper/www/mitigation_synthetic_latent_results.png, dd8ba1d;
#: overlapping; every generator with latent_space = true): domain, grid ("MMD (model)"), f1; read to
#: about ±0.003 (domain), ±0.0002 (grid), ±0.002 (performance)
LATENT_MITIGATION = {
    ("overlapping", m, g): dict(zip(("domain", "grid", "f1"), v))
    for (m, g), v in {
        ("linear", "claproar"): (0.095, 0.0005, 0.001),
        ("linear", "gravitational"): (0.076, 0.000, 0.005),
        ("linear", "latent"): (0.106, 0.0057, -0.048),
        ("linear", "latent_conservative"): (0.102, 0.0015, -0.006),
        ("mlp", "claproar"): (0.077, -0.0001, 0.005),
        ("mlp", "gravitational"): (0.072, -0.0003, 0.005),
        ("mlp", "latent"): (0.108, -0.0002, -0.002),
        ("mlp", "latent_conservative"): (0.105, -0.0001, 0.006),
        ("ensemble", "claproar"): (0.083, 0.000, -0.005),
        ("ensemble", "gravitational"): (0.079, -0.0002, -0.010),
        ("ensemble", "latent"): (0.113, 0.0002, -0.012),
        ("ensemble", "latent_conservative"): (0.105, 0.0001, -0.006),
    }.items()
}

#: the paper's real-data figure (paper/www/real_world_results.png, bce69ff): the deep ensemble only
#: (real_world.qmd plots ``model_ = :FluxEnsemble``); its "MMD (model)" is the metric named ``mmd``
#: (PP-MMD on the data, our mmd_model), not the grid one; read to about ±0.0005 (domain), ±0.002
#: (model), ±0.005 (performance)
REAL = {
    (d, "ensemble", g): dict(zip(("domain", "model", "f1"), v))
    for (d, g), v in {
        ("california", "dice"): (0.0020, 0.011, -0.038),
        ("california", "generic"): (0.0020, 0.0085, -0.031),
        ("california", "greedy"): (0.0020, 0.0155, -0.048),
        ("california", "latent"): (0.0080, 0.0097, -0.033),
        ("credit", "dice"): (-0.0005, 0.031, -0.108),
        ("credit", "generic"): (-0.0005, 0.032, -0.108),
        ("credit", "greedy"): (-0.0008, 0.039, -0.034),
        ("credit", "latent"): (0.0028, 0.0345, -0.085),
        ("gmsc", "dice"): (0.0006, 0.0023, -0.030),
        ("gmsc", "generic"): (0.0005, 0.0035, -0.028),
        ("gmsc", "greedy"): (0.0005, 0.0013, -0.037),
        ("gmsc", "latent"): (0.0097, 0.0036, -0.027),
    }.items()
}

#: the paper's real-data mitigation figure (paper/www/mitigation_real_world_results.png, dd8ba1d):
#: the MLP only (mitigation_strategies.qmd plots ``model_ = :FluxModel``), 2500 rows per data set;
#: "MMD (model)" = PP-MMD on the data; read to about ±0.002 (model), ±0.005 (performance)
REAL_MITIGATION = {
    (d, "mlp", g): dict(zip(("model", "f1"), v))
    for (d, g), v in {
        ("california", "claproar"): (0.029, -0.036),
        ("california", "generic"): (0.029, -0.033),
        ("california", "generic_conservative"): (0.030, -0.033),
        ("california", "gravitational"): (0.027, -0.035),
        ("california", "latent"): (0.027, -0.041),
        ("credit", "claproar"): (0.092, -0.028),
        ("credit", "generic"): (0.098, -0.036),
        ("credit", "generic_conservative"): (0.092, -0.049),
        ("credit", "gravitational"): (0.091, -0.030),
        ("credit", "latent"): (0.088, -0.031),
        ("gmsc", "claproar"): (0.034, -0.058),
        ("gmsc", "generic"): (0.029, -0.067),
        ("gmsc", "generic_conservative"): (0.029, -0.072),
        ("gmsc", "gravitational"): (0.031, -0.075),
        ("gmsc", "latent"): (0.035, -0.065),
    }.items()
}


def ours(root: Path) -> dict:
    """(data, model, generator) -> metric -> (mean, sd, n) at the last evaluated round."""
    out = {}
    for path in sorted(root.glob("sims/*/*/done.json")):
        rec = json.loads(path.read_text())
        rec = rec.get("value", rec)
        rows = [r for r in rec["history"] if "mmd_domain" in r]
        last = max(r["round"] for r in rows)
        vals = collections.defaultdict(lambda: collections.defaultdict(list))
        for r in rows:
            if r["round"] == last:
                for short, name in METRICS.items():
                    vals[r["generator"]][short].append(r[name])
        for gen, d in vals.items():
            out[(rec["dataset"], rec["model"], gen)] = {
                k: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else float("nan"), len(v))
                for k, v in d.items()
            }
    return out


def table(root: Path, readings: dict, metrics=_ORDER) -> str:
    mine = ours(root)
    head = "| data | model | generator | " + " | ".join(metrics) + " |"
    lines = [head, "|" + "---|" * (3 + len(metrics))]
    for key, paper in readings.items():
        if key not in mine:
            continue
        cells = []
        for m in metrics:
            if m not in paper:
                cells.append("")
                continue
            mean, sd, _ = mine[key][m]
            cells.append(f"{paper[m]:.3g} / {mean:.3g} ± {sd:.2g}")
        lines.append(f"| {' | '.join(key)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\nEach cell: paper (chart reading) / ours, mean ± sd over the repetitions.\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--mitigation", action="store_true", help="compare with the mitigation figure")
    ap.add_argument("--latent-mitigation", action="store_true", help="compare with the latent-space mitigation figure")
    ap.add_argument("--real", action="store_true", help="compare with the real-data figure (the ensemble)")
    ap.add_argument("--real-mitigation", action="store_true", help="compare with the real-data mitigation figure (MLP)")
    args = ap.parse_args()
    if args.real_mitigation:
        print(table(args.results, REAL_MITIGATION, ("model", "f1")))
    elif args.real:
        print(table(args.results, REAL, ("domain", "model", "f1")))
    elif args.latent_mitigation:
        print(table(args.results, LATENT_MITIGATION, ("domain", "grid", "f1")))
    elif args.mitigation:
        print(table(args.results, MITIGATION, ("domain", "grid", "f1")))
    else:
        print(table(args.results, SYNTHETIC))


if __name__ == "__main__":
    main()

"""The paper's two ordering claims, ours beside the paper's own tables, over several
``preset: eccco-2024`` run folders (any data sets; folders of one data set are pooled):

- ECCCo is the most faithful generator (lowest ``unfaithfulness_ref``) for every model;
  "ECCCo" counts ECCCo or its no-CP ablation (both carry the energy term; the set-size term is flat);
- JEMs are below MLPs: ECCCo's unfaithfulness on the JEM below the MLP's, and on the JEM ensemble
  below the MLP ensemble's.

    python experiments/eccco_orderings.py RESULTS_DIR [RESULTS_DIR ...]

Reads each folder's ``paper.csv`` (written by the eccco kind); ours is the mean over the folders
of each folder's mean over its runs. Prints one markdown table. MNIST's paper values are SSIM-based,
so only its ordering, not its size, is comparable.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

MODELS = ("mlp", "ensemble", "jem", "jem_ensemble")
ECCCO = ("eccco", "eccco_no_conformal")


def orderings(cmp: pd.DataFrame) -> list[dict]:
    """One row per (data set, model): the lowest generator, ours and the paper's, and JEM < MLP."""
    u = cmp[cmp["metric"] == "unfaithfulness_ref"]
    ours = u.groupby(["dataset", "model", "generator"])["ours"].mean()
    paper = u.groupby(["dataset", "model", "generator"])["paper"].first()
    folders = u.groupby("dataset")["folder"].nunique()
    rows = []
    for dataset in dict.fromkeys(u["dataset"]):
        for model in MODELS:
            if (dataset, model) not in ours.index.droplevel(2):
                continue
            o, p = ours.loc[(dataset, model)], paper.loc[(dataset, model)]
            row = {
                "dataset": dataset,
                "folders": int(folders[dataset]),
                "model": model,
                "ours_lowest": o.idxmin(),
                "ours_eccco_lowest": o.idxmin() in ECCCO,
                "paper_lowest": p.idxmin(),
                "paper_eccco_lowest": p.idxmin() in ECCCO,
            }
            mlp = {"jem": "mlp", "jem_ensemble": "ensemble"}.get(model)
            if mlp is not None and (dataset, mlp) in ours.index.droplevel(2):
                row["ours_jem_below"] = bool(ours.loc[(dataset, model, "eccco")] < ours.loc[(dataset, mlp, "eccco")])
                row["paper_jem_below"] = bool(paper.loc[(dataset, model, "eccco")] < paper.loc[(dataset, mlp, "eccco")])
            rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", type=Path, nargs="+")
    args = ap.parse_args()
    cmp = pd.concat(pd.read_csv(d / "paper.csv").assign(folder=k) for k, d in enumerate(args.results))
    yes = lambda b: "yes" if b else "**no**"  # noqa: E731
    print(
        "| data (folders) | model | lowest: ours | ECCCo lowest: ours | lowest: paper | ECCCo lowest: paper "
        "| ECCCo JEM < MLP: ours | paper |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in orderings(cmp):
        below = (yes(r["ours_jem_below"]), yes(r["paper_jem_below"])) if "ours_jem_below" in r else ("", "")
        print(
            f"| {r['dataset']} ({r['folders']}) | {r['model']} | {r['ours_lowest']} | {yes(r['ours_eccco_lowest'])} "
            f"| {r['paper_lowest']} | {yes(r['paper_eccco_lowest'])} | {below[0]} | {below[1]} |"
        )


if __name__ == "__main__":
    main()

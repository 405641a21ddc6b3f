"""The paper's cells beside several ``preset: eccco-2024`` runs that differ in their seed (data
noise, split, model initialisation, factuals, samples): one column per run folder (mean ± sd of
its run means, all counterfactuals), then the mean ± sd over the folders.

    python experiments/eccco_realisations.py RESULTS_DIR [RESULTS_DIR ...] [--valid]

Reads each folder's ``paper.csv`` (written by the eccco kind) and prints a markdown table per
data set; ``*`` marks a cell whose mean over the folders is neither within 15 % of the paper's
value nor within 2 sd (over the folders) of it. ``--valid``: the same over valid counterfactuals
only (the paper's main-text tables; ``paper_valid`` and ``ours_valid`` of ``paper.csv``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

MODELS = ("mlp", "ensemble", "jem", "jem_ensemble")


def _cell(u: float, su: float, i: float, si: float) -> str:
    sd = lambda s: f"±{s:.2f}" if np.isfinite(s) else ""
    return f"{u:.2f}{sd(su)} / {i:.2f}{sd(si)}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", type=Path, nargs="+")
    ap.add_argument("--valid", action="store_true", help="valid counterfactuals only")
    args = ap.parse_args()
    frames = [pd.read_csv(d / "paper.csv").assign(folder=k) for k, d in enumerate(args.results)]
    if args.valid:  # the valid-only columns in place of the all-counterfactual ones (validity stays)
        frames = [
            f.assign(
                paper=f["paper_valid"].where(f["metric"] != "validity", f["paper"]),
                ours=f["ours_valid"].where(f["metric"] != "validity", f["ours"]),
                sd_runs=f["sd_runs_valid"].where(f["metric"] != "validity", f["sd_runs"]),
            )
            for f in frames
        ]
    cmp = pd.concat(frames)
    for dataset in dict.fromkeys(cmp["dataset"]):
        sub = cmp[cmp["dataset"] == dataset]
        heads = " | ".join(f"seed {d.name}" for d in args.results)
        print(f"\n#### {dataset}\n")
        print(f"| generator | model | paper | {heads} | mean ± sd over seeds | validity |")
        print("|---|---|---|" + "---|" * len(args.results) + "---|---|")
        n_ok = n = 0
        for gen in dict.fromkeys(sub["generator"]):
            for model in MODELS:
                c = sub[(sub["generator"] == gen) & (sub["model"] == model)]
                if c.empty:
                    continue
                cols, flag, means = [], "", {}
                for k in range(len(args.results)):
                    ck = c[c["folder"] == k].set_index("metric")
                    if ck.empty:
                        cols.append("–")
                        continue
                    u, i = ck.loc["unfaithfulness_ref"], ck.loc["implausibility"]
                    cols.append(_cell(u.ours, u.sd_runs, i.ours, i.sd_runs))
                for metric in ("unfaithfulness_ref", "implausibility", "validity"):
                    v = c[c["metric"] == metric]["ours"].to_numpy(float)
                    paper = float(c[c["metric"] == metric]["paper"].iloc[0])
                    sd = float(v.std(ddof=1)) if v.size > 1 else np.nan
                    means[metric] = (float(v.mean()), sd, paper)
                    if metric != "validity":
                        n += 1
                        ok = abs(v.mean() - paper) <= max(0.15 * abs(paper), 2 * sd if np.isfinite(sd) else 0.0)
                        n_ok += int(ok)
                        flag = flag if ok else " *"
                (u, su, pu), (i, si, pi), (va, _, pv) = (
                    means["unfaithfulness_ref"],
                    means["implausibility"],
                    means["validity"],
                )
                print(
                    f"| {gen} | {model} | {pu:.2f}/{pi:.2f} | "
                    + " | ".join(cols)
                    + f" | {_cell(u, su, i, si)}{flag} | {va:.2f} (paper {pv:.2f}) |"
                )
        print(f"\n{n_ok} of {n} unfaithfulness/implausibility values within 15 % or 2 sd over the seeds.")


if __name__ == "__main__":
    main()

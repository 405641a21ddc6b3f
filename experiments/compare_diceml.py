"""cfx.explain's DiCE (K = 3, explain's defaults) against dice-ml's random and genetic methods:
the same model, the same factuals, the same constraints, the same metrics (issue 23).

Per data set (Adult, German): ``train_test(data, test_size=0.2, seed=0)``, cfx's default MLP
(``cfx.models.fit(train, seed=0)``, cached as in experiments/explain_validity.py), F seeded test
rows the model rejects, target 1. dice-ml runs in its own environment (``--python``, default
/tmp/xvenv/bin/python; dice-ml is not a cfx dependency) through experiments/diceml_runner.py,
on a numpy copy of the same model (checked against cfx's probabilities) with cfx's constraints
in dice-ml's vocabulary: immutable columns left out of ``features_to_vary``, an increase-only
column given ``permitted_range`` [its value, max] per factual. Every method's counterfactuals
(raw rows) are then scored by the same code here:

  validity          share of the F·K requested counterfactuals whose raw row, encoded and
                    scored by the cfx model, has p(1) >= 0.5 (a missing one counts invalid)
  factuals w/ valid share of factuals with at least one valid counterfactual
  diversity         mean over factuals of the mean pairwise L1 (standardised units) among its
                    returned counterfactuals (cfx.explain's ``diversity``)
  features changed  mean number of raw columns that differ from the factual
  cost              mean L1 to the factual (standardised units)
  violations        immutable columns changed, directions crossed, values outside the data's range
  s / factual       wall seconds per factual (cfx: a warm call; dice-ml: its loop over factuals)

    python experiments/compare_diceml.py --sets adult german --factuals 50
    python experiments/compare_diceml.py --sets adult german --methods random genetic gradient --first 10 --reuse
Methods: dice-ml's ``random``, ``genetic`` and ``gradient`` (DiCE's own loss, dice-ml's PyTorch
implementation; needs torch in that environment). Writes OUT/compare.json (atomically) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

import cfx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from explain_validity import model_for  # noqa: E402

K = 3


def export(folder, train, clf, rows):
    """What diceml_runner.py reads: weights, encoder spec, raw training rows, factuals."""
    os.makedirs(folder, exist_ok=True)
    enc = train.encoder
    params = clf.params["params"]
    names = sorted(k for k in params if k.startswith("hidden_")) + ["logits"]
    arrays = {f"W{i}": np.asarray(params[k]["kernel"]) for i, k in enumerate(names)}
    arrays.update({f"b{i}": np.asarray(params[k]["bias"]) for i, k in enumerate(names)})
    np.savez(
        os.path.join(folder, "model.npz"),
        n_layers=len(names),
        mean=np.asarray(enc.mean, np.float32),
        scale=np.asarray(enc.scale, np.float32),
        **arrays,
    )
    mut = np.asarray(train.schema.mutability)
    units = enc.units()
    per_col = {c.name: set(mut[units == i]) for i, c in enumerate(enc.columns)}
    spec = {
        "label": "y",
        "columns": [{"name": c.name, "kind": c.kind, "levels": [str(v) for v in c.levels]} for c in enc.columns],
        "continuous": [c.name for c in enc.columns if c.kind in ("continuous", "integer")],
        "mutable": [c.name for c in enc.columns if per_col[c.name] != {"none"}],
        "increase": [c.name for c in enc.columns if per_col[c.name] == {"increase"}],
        "decrease": [c.name for c in enc.columns if per_col[c.name] == {"decrease"}],
    }
    with open(os.path.join(folder, "spec.json"), "w") as fh:
        json.dump(spec, fh, indent=1)
    frame = train.to_frame()[list(enc.feature_names)].copy()
    frame["y"] = np.asarray(train.y)
    frame.to_csv(os.path.join(folder, "train.csv"), index=False)
    rows.to_csv(os.path.join(folder, "factuals.csv"))
    np.savez(os.path.join(folder, "check.npz"), p=np.asarray(clf.probs(enc.encode(rows)))[:, 1])
    return spec


def as_raw(cf: pd.DataFrame, rows: pd.DataFrame, encoder) -> pd.DataFrame:
    """dice-ml's output in the rows' own values and dtypes (its categories come back as strings)."""
    out = cf.copy()
    for c in encoder.columns:
        if c.kind in ("continuous", "integer"):
            out[c.name] = pd.to_numeric(out[c.name])
            if c.kind == "integer":
                out[c.name] = out[c.name].round()
            out[c.name] = out[c.name].astype(rows[c.name].dtype)
        else:
            back = {str(v): v for v in c.levels}
            out[c.name] = out[c.name].astype(str).map(back).astype(rows[c.name].dtype)
    return out


def score(train, clf, rows, cfs: pd.DataFrame, seconds: float) -> dict:
    """Metrics of counterfactuals ``cfs`` (raw columns + ``id``), up to K per factual."""
    enc = train.encoder
    names = list(enc.feature_names)
    X = enc.encode(rows[names])
    s = train.schema
    mut, lo, hi = np.asarray(s.mutability), np.asarray(s.lower), np.asarray(s.upper)
    valid_n, any_valid, div, changed, cost, viol = 0, 0, [], [], [], 0
    for i, rid in enumerate(rows.index):
        mine = cfs[cfs["id"] == rid]
        if len(mine) == 0:
            continue
        Z = enc.encode(mine[names])
        ok = np.asarray(clf.probs(Z))[:, 1] >= 0.5
        valid_n += int(ok[:K].sum())
        any_valid += bool(ok.any())
        x = X[i]
        cost += list(np.abs(Z - x).sum(1))
        changed += list(
            (mine[names].reset_index(drop=True) != rows.loc[[rid] * len(mine), names].reset_index(drop=True)).sum(
                axis=1
            )
        )
        if len(Z) > 1:
            pair = np.abs(Z[:, None] - Z[None]).sum(-1)
            div.append(pair.sum() / (len(Z) * (len(Z) - 1)))
        viol += int(
            ((mut == "none") & (np.abs(Z - x) > 1e-5)).sum()
            + ((mut == "increase") & (Z < x - 1e-5)).sum()
            + ((mut == "decrease") & (Z > x + 1e-5)).sum()
            + ((Z < lo - 1e-4) | (Z > hi + 1e-4)).sum()
        )
    n = len(rows)
    return {
        "validity": valid_n / (K * n),
        "factuals_with_valid": any_valid / n,
        "returned": len(cfs) / (K * n),
        "diversity": float(np.mean(div)) if div else None,
        "features_changed": float(np.mean(changed)),
        "cost": float(np.mean(cost)),
        "violations": viol,
        "s_per_factual": seconds / n,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=["adult", "german"])
    ap.add_argument("--factuals", type=int, default=50)
    ap.add_argument("--methods", nargs="+", default=["random", "genetic"])
    ap.add_argument("--python", default="/tmp/xvenv/bin/python", help="an interpreter with dice-ml")
    ap.add_argument("--models", default="results/explain_validity", help="the model cache of explain_validity.py")
    ap.add_argument("--out", default="results/compare_diceml")
    ap.add_argument(
        "--diversity",
        type=float,
        nargs="*",
        default=[],
        help="also cfx's DiCE at these diversity weights (explain's default: 1.0)",
    )
    ap.add_argument("--reuse", action="store_true", help="score dice-ml's saved outputs in OUT instead of running it")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per dice-ml method and data set")
    ap.add_argument(
        "--first",
        type=int,
        default=None,
        help="score every method on the first N of the factuals only (dice-ml's gradient method is slow); "
        "writes compare_firstN.json",
    )
    ap.add_argument(
        "--seed",
        type=int,
        default=0,
        help="model seed (explain_validity's cache), factual draw, cfx key and dice-ml's seed",
    )
    args = ap.parse_args(argv)
    results = {}
    runner = os.path.join(os.path.dirname(os.path.abspath(__file__)), "diceml_runner.py")
    for name in args.sets:
        train, test, clf = model_for(name, args.seed, args.models)
        pred = np.asarray(clf.predict(test.X))
        rejected = np.flatnonzero(pred == 0)
        pick = np.sort(
            np.random.default_rng(args.seed).choice(rejected, min(args.factuals, len(rejected)), replace=False)
        )
        rows = test.subset(pick).to_frame()[list(train.encoder.feature_names)]
        folder = os.path.join(args.out, name)
        export(folder, train, clf, rows)
        rows = rows.iloc[: args.first]  # the files keep all F: the runner takes --first too
        cell = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            variants = [
                ("cfx dice-cejl", {"generator": "dice-cejl"}),
                ("cfx dice-cejl, one run (before)", {"generator": "dice-cejl", "runs": 1}),
                ("cfx dice-ml", {"generator": "dice-ml"}),
                ("cfx dice-ml, no restarts", {"generator": "dice-ml", "restarts": False}),
                ("cfx dice-ml, one run (before)", {"generator": "dice-ml", "runs": 1}),
            ]
            variants += [
                (f"cfx dice-cejl, diversity {w:g}", {"generator": "dice-cejl", "diversity": w}) for w in args.diversity
            ]
            for label, opts in variants:
                opts = {"generator": "dice", **opts}
                cfx.explain(clf, rows, data=train, target=1, num_counterfactuals=K, seed=args.seed, **opts)
                began = time.perf_counter()
                frame = cfx.explain(clf, rows, data=train, target=1, num_counterfactuals=K, seed=args.seed, **opts)
                seconds = time.perf_counter() - began
                out = frame[list(train.encoder.feature_names)].reset_index(level="cf", drop=True).reset_index()
                cell[label] = score(train, clf, rows, out, seconds)
                print(name, label, json.dumps(cell[label]), flush=True)
        for method in args.methods:
            began = time.perf_counter()
            saved = os.path.exists(os.path.join(folder, f"diceml_{method}.json"))
            command = [args.python, runner, folder, "--method", method, "--k", str(K), "--seed", str(args.seed)]
            command += ["--first", str(args.first)] if args.first else []
            proc = (
                subprocess.CompletedProcess(command, 0)
                if args.reuse and saved
                else subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
            )
            if proc.returncode:
                print(proc.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"{method} on {name} failed")
            info = json.load(open(os.path.join(folder, f"diceml_{method}.json")))
            cfs = pd.read_csv(os.path.join(folder, f"diceml_{method}.csv"))
            cfs = cfs[cfs["id"].isin(rows.index)]  # --first: the files hold every factual's
            cfs = pd.concat([cfs[["id"]], as_raw(cfs.drop(columns="id"), rows, train.encoder)], axis=1)
            cell[f"dice-ml {method}"] = score(train, clf, rows, cfs, float(np.sum(info["seconds"][: len(rows)])))
            cell[f"dice-ml {method}"]["failed"] = len(info["failed"])
            print(
                name,
                method,
                json.dumps(cell[f"dice-ml {method}"]),
                f"(wall {time.perf_counter() - began:.0f} s)",
                flush=True,
            )
        results[name] = {"factuals": len(rows), **cell}
    os.makedirs(args.out, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=args.out, delete=False) as fh:
        json.dump(results, fh, indent=2)
    os.replace(fh.name, os.path.join(args.out, f"compare_first{args.first}.json" if args.first else "compare.json"))
    table = pd.DataFrame(
        [{"set": s, "method": m, **v} for s, cell in results.items() for m, v in cell.items() if isinstance(v, dict)]
    )
    pd.set_option("display.width", 220)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()

"""Validity of ``cfx.explain`` at its defaults on four real data sets (issue 23).

Per data set (Adult full file, German credit, Taiwan credit default, COMPAS): ``train_test(data,
test_size=0.2, seed=0)``, cfx's default MLP ``cfx.models.fit(train, seed=S)`` (cached under
``OUT/models``), and F seeded test rows the model rejects (predicted 0), target 1. Then:

  explain/generic   cfx.explain(clf, rows, data=train, target=1)                 (K = 1)
  explain/dice      cfx.explain(..., generator="dice", num_counterfactuals=3) (dice-ml's loss;
                    explain/dice-cejl: CE.jl's loss)
  explain/NAME:norestart   the same with restarts=False (before the restarts)
  generate/dice     cfx.generate(DiCE(), ..., constraints=schema, max_steps=200): the registry
                    defaults, validity re-scored on the decoded raw row (the issue's 70 %)
  generate/dice+repair  the same, then cfx.restarts.repair on the result

Per configuration: validity per counterfactual (``valid``: the returned raw row re-encoded and
re-scored), the share of factuals with at least one / all K valid, the outcome codes, and
"valid but not converged" / "converged but not valid" counts (the two must agree).

    python experiments/explain_validity.py --sets adult german credit compas --factuals 100
Writes OUT/validity.json (atomically) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings

import jax
import numpy as np
import pandas as pd

import cfx
import cfx.restarts
from cfx.data.rows import raw_counterfactuals
from cfx.explain import CONTINUOUS_TOLERANCE, _validity


def model_for(name: str, seed: int, out: str):
    data = cfx.data.load(name)
    train, test = cfx.data.train_test(data, test_size=0.2, seed=0)
    path = os.path.join(out, "models", f"{name}-{seed}")
    if os.path.exists(os.path.join(path, "manifest.json")) or os.path.exists(path):
        try:
            return train, test, cfx.load(path)["classifier"]
        except FileNotFoundError:
            pass
    clf = cfx.models.fit(train, seed=seed)
    cfx.save(path, classifier=clf)
    return train, test, clf


def summary(valid: np.ndarray, outcome: np.ndarray, seconds: float) -> dict:
    """valid, outcome: (n, K)."""
    converged = outcome == 0
    codes, counts = np.unique(outcome, return_counts=True)
    return {
        "validity": float(valid.mean()),
        "factuals_any_valid": float(valid.any(1).mean()),
        "factuals_all_valid": float(valid.all(1).mean()),
        "invalid": int((~valid).sum()),
        "valid_not_converged": int((valid & ~converged).sum()),
        "converged_not_valid": int((converged & ~valid).sum()),
        "outcomes": {cfx.OUTCOMES[c]: int(k) for c, k in zip(codes, counts)},
        "seconds": seconds,
    }


def run_explain(train, clf, rows, generator, K, warm=False, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if warm:
            cfx.explain(clf, rows, data=train, target=1, generator=generator, num_counterfactuals=K, **options)
        began = time.perf_counter()
        frame = cfx.explain(clf, rows, data=train, target=1, generator=generator, num_counterfactuals=K, **options)
    seconds = time.perf_counter() - began
    n = len(rows)
    valid = frame["valid"].to_numpy().reshape(n, K)
    codes = {name: i for i, name in enumerate(cfx.OUTCOMES)}
    outcome = frame["outcome"].map(codes).to_numpy().reshape(n, K)
    out = summary(valid, outcome, seconds)
    # the returned raw rows scored again here, independently of explain's own column
    again = np.asarray(clf.probs(train.encoder.encode(frame[list(train.encoder.feature_names)])))[:, 1] >= 0.5
    out["valid_flag_wrong"] = int((again != frame["valid"].to_numpy()).sum())
    out.update(
        cost=float(frame["cost"].mean()),
        features_changed=float(frame["n_changed"].mean()),
        diversity=float(frame["diversity"].mean()) if K > 1 else None,
    )
    if "status" in frame:
        out["status"] = frame["status"].value_counts().to_dict()
        for status, part in frame.groupby("status"):
            out[f"cost/{status}"] = float(part["cost"].mean())
            out[f"features_changed/{status}"] = float(part["n_changed"].mean())
    return out, frame


def run_generate(train, clf, rows, K, max_steps=200, repair=False):
    X = train.encoder.encode(rows)
    began = time.perf_counter()
    res = cfx.generate(
        cfx.generators.make("dice").replace(num_counterfactuals=K),
        clf,
        X,
        1,
        key=jax.random.key(0),
        constraints=train.schema.constraints(),
        max_steps=max_steps,
    )
    if repair:
        res, _ = cfx.restarts.repair(res, clf, train, constraints=train.schema.constraints())
    seconds = time.perf_counter() - began
    x, x_cf = np.asarray(res.factuals), np.asarray(res.counterfactuals)
    n, _, d = x_cf.shape
    cfs, _ = raw_counterfactuals(train.encoder, rows, x, x_cf, CONTINUOUS_TOLERANCE)
    decoded = train.encoder.encode(cfs).reshape(n, K, d)
    _, ok = _validity(clf, x, decoded, res.target, res.threshold)
    return summary(np.asarray(ok), np.asarray(res.outcome), seconds)


def markdown(path: str) -> str:
    """A markdown table from a validity.json: per data set and configuration, the min–max over
    model seeds of validity, factuals with a valid counterfactual, features changed and cost."""
    results = json.load(open(path))["results"]
    cells: dict = {}
    for key, cell in results.items():
        name = key.split("/")[0]
        for config, s in cell.items():
            if isinstance(s, dict):
                cells.setdefault((name, config), []).append(s)

    def span(values, fmt="{:.3f}"):
        values = [v for v in values if v is not None]
        if not values:
            return "–"
        lo, hi = min(values), max(values)
        return fmt.format(lo) if abs(hi - lo) < 5e-4 else f"{fmt.format(lo)}–{fmt.format(hi)}"

    lines = [
        "| data set | configuration | seeds | validity | factuals with a valid cf | restarted | features changed | cost |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (name, config), runs in cells.items():
        n = [sum(r.get("status", {}).values()) or 1 for r in runs]
        restarted = (
            [r.get("status", {}).get("restarted", 0) / k for r, k in zip(runs, n)] if "status" in runs[0] else []
        )
        lines.append(
            f"| {name} | {config} | {len(runs)} | {span([r['validity'] for r in runs])} | "
            f"{span([r['factuals_any_valid'] for r in runs])} | {span(restarted, '{:.2f}')} | "
            f"{span([r.get('features_changed') for r in runs], '{:.2f}')} | "
            f"{span([r.get('cost') for r in runs], '{:.2f}')} |"
        )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", help="print the markdown table of this validity.json and stop")
    ap.add_argument("--sets", nargs="+", default=["adult", "german", "credit", "compas"])
    ap.add_argument("--factuals", type=int, default=100)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="model seeds (factuals drawn with the same seed)")
    ap.add_argument("--configs", nargs="+", default=["explain/generic", "explain/dice", "generate/dice"])
    ap.add_argument("--warm", action="store_true", help="time a second call (the first compiles)")
    ap.add_argument("--out", default="results/explain_validity")
    args = ap.parse_args(argv)
    if args.report:
        print(markdown(args.report))
        return
    os.makedirs(args.out, exist_ok=True)
    results, failures = {}, []
    for name in args.sets:
        for seed in args.seeds:
            t0 = time.perf_counter()
            train, test, clf = model_for(name, seed, args.out)
            pred = np.asarray(clf.predict(test.X))
            accuracy = float((pred == test.y).mean())
            rejected = np.flatnonzero(pred == 0)
            pick = np.sort(
                np.random.default_rng(seed).choice(rejected, min(args.factuals, len(rejected)), replace=False)
            )
            rows = test.subset(pick).to_frame()
            cell = {"accuracy": accuracy, "factuals": len(rows), "model_s": time.perf_counter() - t0}
            for config in args.configs:
                if config.startswith("generate/dice"):
                    cell[config] = run_generate(train, clf, rows, 3, repair=config.endswith("+repair"))
                else:
                    gen, _, variant = config.split("/")[1].partition(":")
                    K = 3 if gen in ("dice", "dice-ml", "dice-cejl") else 1
                    extra = {"restarts": False} if variant == "norestart" else {}
                    cell[config], frame = run_explain(train, clf, rows, gen, K, warm=args.warm, **extra)
                    bad = frame[~frame["valid"]]
                    for (rid, k), r in bad.iterrows():
                        failures.append(
                            {
                                "set": name,
                                "seed": seed,
                                "config": config,
                                "id": int(rid),
                                "cf": int(k),
                                "p_target": float(r["p_target"]),
                                "outcome": r["outcome"],
                                "changed": list(r["changed"]),
                            }
                        )
                print(name, seed, config, json.dumps(cell[config]), flush=True)
            results[f"{name}/{seed}"] = cell
    path = os.path.join(args.out, "validity.json")
    with tempfile.NamedTemporaryFile("w", dir=args.out, delete=False) as fh:
        json.dump({"results": results, "failures": failures}, fh, indent=2)
    os.replace(fh.name, path)
    rows = []
    for key, cell in results.items():
        for config in args.configs:
            s = cell[config]
            rows.append(
                {
                    "set/seed": key,
                    "config": config,
                    "validity": s["validity"],
                    "any": s["factuals_any_valid"],
                    "all": s["factuals_all_valid"],
                    "invalid": s["invalid"],
                    "s": s["seconds"],
                    "outcomes": s["outcomes"],
                }
            )
    pd.set_option("display.width", 200)
    print(pd.DataFrame(rows).to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()

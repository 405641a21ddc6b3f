"""Gradient-free counterfactuals for a tree ensemble on Adult: seconds per 100 factuals.

Adult (CARLA file, all rows; ``cfx.data.train_test(seed=0)``), a ``RandomForestClassifier``
(``--model xgboost``: an ``XGBClassifier``, the same trees and depth) fitted on the encoded
training split, N test factuals the forest rejects, target 1, the
schema's constraints (immutable, monotone, bounds, one-hot groups, integer grids). Methods:

  gs/black-box     GrowingSpheres on ``from_predict_proba(forest.predict_proba)``: sklearn
                   called on the host through ``jax.pure_callback`` (one call per step for
                   all factuals × samples, then one per feature in the sparsify pass)
  gs/translated    GrowingSpheres on ``from_sklearn(forest)`` (the trees as JAX arrays; XGBoost's
                   too)
  feature_tweak    FeatureTweak on ``from_sklearn(forest)`` (leaf boxes scored cheapest first)
  dice-ml/random   dice-ml's random method on the same forest and factuals, when asked for in
                   ``--methods`` and dice-ml is installed (not a cfx dependency)

Each is timed cold (the first call's seconds: tracing + compilation + run) and warm (the same
call again, scaled to 100 factuals),
wall clock, on a machine shared with other jobs (say so beside any figure). Validity is
judged by sklearn's own ``forest.predict`` on the returned points.

    python benchmarks/bench_blackbox.py                      # 100 trees, depth 8, N = 100
    python benchmarks/bench_blackbox.py --trees 20 --depth 6 --n 20   # a quick look
Writes results/bench_blackbox.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import numpy as np
from sklearn.ensemble import RandomForestClassifier

import cfx


def timed(fn):
    start = time.perf_counter()
    out = fn()
    jax.block_until_ready(out.counterfactuals)
    return out, time.perf_counter() - start


def dice_random(forest, train, rows, X, y) -> dict:
    """dice-ml's random method on the same forest and factuals (encoded features as continuous
    columns, immutable features not varied, ranges from the training data; dice-ml has no
    increase-only rule). Timed on the second call, as the others warm."""
    import dice_ml
    import pandas as pd

    cols = [f"x{j}" for j in range(X.shape[1])]
    frame = pd.DataFrame(X.astype(np.float64), columns=cols).assign(y=y)  # float64: dice-ml writes doubles
    data = dice_ml.Data(dataframe=frame, continuous_features=cols, outcome_name="y")
    model = dice_ml.Model(model=_Named(forest, cols), backend="sklearn")
    explainer = dice_ml.Dice(data, model, method="random")
    vary = [c for c, m in zip(cols, train.schema.mutability) if m != "none"]
    query = pd.DataFrame(rows.astype(np.float64), columns=cols)
    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        out = explainer.generate_counterfactuals(
            query, total_CFs=1, desired_class=1, features_to_vary=vary, random_seed=0, verbose=False
        )
        seconds.append(time.perf_counter() - start)
    found = [e.final_cfs_df for e in out.cf_examples_list]
    cf = np.array(
        [f[cols].to_numpy(np.float32)[0] if f is not None and len(f) else np.full(len(cols), np.nan) for f in found]
    )
    has = ~np.isnan(cf).any(1)
    valid = np.zeros(len(rows), bool)
    valid[has] = forest.predict(cf[has]) == 1
    delta = cf - rows
    return {
        "cold_s": seconds[0],
        "warm_s_per_100": seconds[1] * 100 / len(rows),
        "valid_sklearn": float(valid.mean()),
        "converged": float(has.mean()),
        "l1": float(np.abs(delta).sum(1)[valid].mean()) if valid.any() else None,
        "l2": float(np.linalg.norm(delta, axis=1)[valid].mean()) if valid.any() else None,
        "features_changed": float((np.abs(delta) > 1e-6).sum(1)[valid].mean()) if valid.any() else None,
        "mean_steps": None,
    }


class _Named:
    """The forest for dice-ml, which passes DataFrames: their values in the fitted column order."""

    def __init__(self, forest, cols):
        self.forest, self.cols = forest, cols

    def predict_proba(self, frame):
        return self.forest.predict_proba(np.asarray(frame[self.cols], np.float32))

    def predict(self, frame):
        return self.forest.predict(np.asarray(frame[self.cols], np.float32))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100, help="factuals (rejected test rows)")
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--samples", type=int, default=1000, help="GrowingSpheres samples per shell (CARLA: 1000)")
    parser.add_argument("--max-steps", type=int, default=100)
    parser.add_argument(
        "--methods", default="gs/black-box,gs/translated,feature_tweak", help="comma-separated subset of the methods"
    )
    parser.add_argument(
        "--model",
        default="forest",
        choices=["forest", "xgboost"],
        help="forest: sklearn RandomForestClassifier; xgboost: XGBClassifier (xgboost installed)",
    )
    parser.add_argument(
        "--dice-n",
        type=int,
        default=None,
        help="dice-ml on the first N of the factuals only (slow); its seconds are scaled to 100",
    )
    parser.add_argument("--out", default="results/bench_blackbox.json")
    args = parser.parse_args(argv)

    train, test = cfx.data.train_test(cfx.data.load("adult"), test_size=0.2, seed=0)
    X, y = np.asarray(train.X), np.asarray(train.y)
    t0 = time.perf_counter()
    if args.model == "xgboost":
        from xgboost import XGBClassifier

        forest = XGBClassifier(n_estimators=args.trees, max_depth=args.depth, random_state=0, n_jobs=1).fit(X, y)
    else:
        forest = RandomForestClassifier(args.trees, max_depth=args.depth, random_state=0, n_jobs=1).fit(X, y)
    fit_s = time.perf_counter() - t0
    Xte = np.asarray(test.X)
    rows = Xte[forest.predict(Xte) == 0][: args.n]
    constraints = train.schema.constraints()
    translated = cfx.models.from_sklearn(forest)
    black_box = cfx.models.from_predict_proba(forest.predict_proba, X.shape[1], 2)
    key = jax.random.key(0)
    common = dict(target=1, key=key, constraints=constraints, max_steps=args.max_steps)
    methods = {
        "gs/black-box": (cfx.generators.GrowingSpheres(n_samples=args.samples), black_box),
        "gs/translated": (cfx.generators.GrowingSpheres(n_samples=args.samples), translated),
        "feature_tweak": (cfx.generators.FeatureTweak(), translated),
    }
    report = {
        "model": args.model,
        "n": len(rows),
        "d": X.shape[1],
        "trees": args.trees,
        "depth": args.depth,
        "leaves": int(translated.params["paths"]["lower"].shape[0]),
        "forest_fit_s": fit_s,
        "test_accuracy": float((forest.predict(Xte) == np.asarray(test.y)).mean()),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "devices": str(jax.devices()),
        "methods": {},
    }
    for name, (gen, clf) in methods.items():
        if name not in args.methods.split(","):
            continue
        res, cold = timed(lambda: cfx.generate(gen, clf, rows, **common))
        res, warm = timed(lambda: cfx.generate(gen, clf, rows, **common))
        cf = np.asarray(res.counterfactuals)[:, 0]
        valid = forest.predict(cf) == 1
        delta = cf - rows
        report["methods"][name] = {
            "cold_s": cold,
            "warm_s_per_100": warm * 100 / len(rows),
            "valid_sklearn": float(valid.mean()),
            "converged": float((np.asarray(res.outcome)[:, 0] == 0).mean()),
            "l1": float(np.abs(delta).sum(1)[valid].mean()) if valid.any() else None,
            "l2": float(np.linalg.norm(delta, axis=1)[valid].mean()) if valid.any() else None,
            "features_changed": float((np.abs(delta) > 1e-6).sum(1)[valid].mean()) if valid.any() else None,
            "mean_steps": float(np.asarray(res.steps).mean()),
        }
        print(name, json.dumps(report["methods"][name]), flush=True)
    if "dice-ml/random" in args.methods.split(","):
        dice_rows = rows[: args.dice_n]
        report["methods"]["dice-ml/random"] = {**dice_random(forest, train, dice_rows, X, y), "n": len(dice_rows)}
        print("dice-ml/random", json.dumps(report["methods"]["dice-ml/random"]), flush=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2)
    os.replace(tmp, args.out)  # atomic: a reader never sees half a file
    print(
        f"\nAdult, {args.model}({args.trees} trees, depth {args.depth}, {report['leaves']} leaves), "
        f"{len(rows)} rejected test rows, d = {X.shape[1]} (wall clock, shared machine)"
    )
    print(
        f"| method | first call, s ({len(rows)} factuals, compile incl.) | warm s / 100 | valid (sklearn) | L1 | L2 | "
        "features changed |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, m in report["methods"].items():
        fmt = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
        print(
            f"| {name} | {m['cold_s']:.2f} | {m['warm_s_per_100']:.2f} | {m['valid_sklearn']:.2f} | "
            f"{fmt(m['l1'])} | {fmt(m['l2'])} | {fmt(m['features_changed'])} |"
        )


if __name__ == "__main__":
    main()

"""cfx.explain on Adult: validity after rounding, sparsity and DiCE diversity, before and after.

Adult (CARLA file; a seeded subsample), cfx's own MLP, 50 test factuals the model rejects,
target 1 (income > 50K). Each configuration runs on the same factuals:

  generic/before   Generic, noisy start (CE.jl's default), no integer grid, no sparsity pass;
                   validity measured on the decoded point (integers rounded, as a user must)
  generic/grid     + integer features searched relaxed and returned rounded (done-ness on it)
  generic/after    cfx.explain defaults: grid, identity start, sparsity pass
  dice/before      DiCE K = 3 at the registry defaults (diversity 0.1, 100 steps), no grid
  dice/after       cfx.explain defaults for DiCE (diversity 1.0, 500 steps, grid, sparsity; since
                   issue 23 also 4 runs from spread starts, the K farthest apart)
                   (and the same without the sparsity pass)

Per configuration: validity on the decoded raw point, mean raw features changed (L0 over raw
columns), mean pairwise L1 among the K (standardised units), duplicate counterfactuals after
decoding, factuals with no valid counterfactual, constraint violations, warm time per factual.

    python experiments/tabular_explain.py                 # n = 10,000 rows, 50 factuals
    python experiments/tabular_explain.py --n 4000 --epochs 20
Writes results/tabular_explain.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import jax
import numpy as np
import pandas as pd

import cfx
from cfx.data.rows import raw_counterfactuals
from cfx.explain import CONTINUOUS_TOLERANCE, _frame, _validity


def constraint_violations(train, x, x_cf) -> int:
    """Immutable features changed, monotone sides crossed, bounds left, broken one-hot groups,
    integer features off their grid (counted per counterfactual and feature)."""
    s = train.schema
    d = x.shape[-1]
    X, C = np.broadcast_to(x[:, None], x_cf.shape).reshape(-1, d), x_cf.reshape(-1, d)
    mut = np.asarray(s.mutability)
    bad = (
        ((mut == "none") & (C != X)).sum()
        + ((mut == "increase") & (C < X)).sum()
        + ((mut == "decrease") & (C > X)).sum()
    )
    bad += ((C < np.asarray(s.lower) - 1e-6) | (C > np.asarray(s.upper) + 1e-6)).sum()
    for g in s.categorical_groups:
        cols = C[:, list(g)]
        ok = np.isin(cols, (0.0, 1.0)).all(1) & ((cols.sum(1) == 1) if len(g) > 1 else True)
        bad += (~ok).sum()
    grid = list(s.integer_features)
    if grid:
        raw = C[:, grid] * np.asarray(s.raw_scale)[grid] + np.asarray(s.raw_offset)[grid]
        bad += (np.abs(raw - np.round(raw)) > 1e-3 + 1e-6 * np.abs(raw)).sum()  # float32 spacing of large raws
    return int(bad)


def summarise(
    frame: pd.DataFrame, x_cf_decoded_valid: np.ndarray | None, K: int, violations: int, seconds: float, n: int
):
    valid = frame["valid"].to_numpy() if x_cf_decoded_valid is None else x_cf_decoded_valid
    per_factual = valid.reshape(n, K)
    return {
        "validity": float(valid.mean()),
        "median_p_target": float(frame["p_target"].median()),
        "mean_features_changed": float(frame["n_changed"].mean()),
        "mean_pairwise_l1": float(frame["diversity"].mean()) if K > 1 else None,
        "duplicates": int(frame["duplicate"].sum()),
        "factuals_without_valid_cf": int((~per_factual.any(1)).sum()),
        "violations": violations,
        "warm_s_per_factual": seconds / n,
    }


def run_plain(train, clf, rows, gen, K, *, grid: bool, start, max_steps, seed=0):
    """cfx.generate without explain's defaults; validity re-measured on the decoded point."""
    schema = train.schema if grid else train.schema.replace(kinds=None)
    X = train.encoder.encode(rows)
    kw = dict(key=jax.random.key(seed), constraints=schema.constraints(), max_steps=max_steps)
    gen = gen.replace(num_counterfactuals=K, start=start)
    cfx.generate(gen, clf, X, 1, **kw)  # warm
    began = time.perf_counter()
    res = cfx.generate(gen, clf, X, 1, **kw)
    seconds = time.perf_counter() - began
    x, x_cf = np.asarray(res.factuals), np.asarray(res.counterfactuals)
    n, _, d = x_cf.shape
    # a user reads the decoded point: integers rounded; encode it again and ask the model
    cfs, changed = raw_counterfactuals(train.encoder, rows, x, x_cf, CONTINUOUS_TOLERANCE)
    decoded = train.encoder.encode(cfs).reshape(n, K, d)
    p, ok = _validity(clf, x, decoded, res.target, res.threshold)
    frame = _frame(
        train.encoder,
        rows,
        x,
        decoded,
        cfs,
        changed,
        np.asarray(p),
        np.asarray(ok),
        np.zeros(n, bool),
        np.asarray(res.outcome),
        seconds,
        0.0,
    )
    return summarise(frame, np.asarray(ok).reshape(-1), K, constraint_violations(train, x, decoded), seconds, n)


def run_explain(train, clf, rows, generator, K, **options):
    cfx.explain(clf, rows, data=train, target=1, generator=generator, num_counterfactuals=K, **options)  # warm
    began = time.perf_counter()
    frame = cfx.explain(clf, rows, data=train, target=1, generator=generator, num_counterfactuals=K, **options)
    seconds = time.perf_counter() - began
    x = train.encoder.encode(rows)
    n, d = x.shape
    x_cf = train.encoder.encode(frame[list(train.encoder.feature_names)]).reshape(n, K, d)
    return summarise(frame, None, K, constraint_violations(train, x, x_cf), seconds, n), frame


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="Adult rows (seeded subsample)")
    ap.add_argument("--factuals", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--out", default="results/tabular_explain.json")
    args = ap.parse_args(argv)

    data = cfx.data.load("adult", n=args.n, seed=0)
    train, test = cfx.data.train_test(data, seed=0)
    clf = cfx.models.fit(train, model="mlp", epochs=args.epochs, batch_size=128, seed=0)
    accuracy = float((np.asarray(clf.predict(test.X)) == test.y).mean())
    rejected = np.flatnonzero(np.asarray(clf.predict(test.X)) == 0)
    pick = np.random.default_rng(0).choice(rejected, args.factuals, replace=False)
    rows = test.subset(pick).to_frame()

    generic = cfx.generators.make("generic")
    dice = cfx.generators.make("dice")
    results = {
        "setup": {
            "rows": len(data),
            "train": len(train),
            "test_accuracy": accuracy,
            "factuals": len(rows),
            "backend": jax.default_backend(),
        },
        "generic/before": run_plain(train, clf, rows, generic, 1, grid=False, start="noise", max_steps=100),
        "generic/grid": run_plain(train, clf, rows, generic, 1, grid=True, start="noise", max_steps=100),
        "generic/after": run_explain(train, clf, rows, "generic", 1)[0],
        "dice/before": run_plain(train, clf, rows, dice, 3, grid=False, start="noise", max_steps=100),
        "dice/after, sparse=False": run_explain(train, clf, rows, "dice", 3, sparse=False)[0],
    }
    results["dice/after"], frame = run_explain(train, clf, rows, "dice", 3)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=os.path.dirname(args.out) or ".", delete=False) as fh:
        json.dump(results, fh, indent=2)
    os.replace(fh.name, args.out)
    table = pd.DataFrame({k: v for k, v in results.items() if k != "setup"}).T
    print(json.dumps(results["setup"]))
    print(table.to_string(float_format=lambda v: f"{v:.3g}"))
    pd.set_option("display.width", 200)
    print(frame.head(6).to_string())


if __name__ == "__main__":
    main()

"""MAP vs last-layer Laplace on real data: calibration (ECE), Schut's counterfactuals, cost.

For each data set and seed: a class-balanced sample of ``--n`` rows, a stratified 80/20 split
(standardised on the training split), cfx's default MLP (64, 64, relu, Adam 1e-3, 100 epochs),
then ``cfx.models.laplace`` (full GGN, evidence-optimised δ) with the probit and the MC (100
draws) predictive, and the diag / KFAC probit. Reported on the held-out split: accuracy, NLL,
ECE (10 bins). Schut (``greedy``: η = 0.1, at most 10 moves per feature, CE.jl's defaults) is run
on up to ``--factuals`` held-out rows that both MAP and Laplace reject, target 1, on each model;
at τ = 0.5 and 0.9 (``--thresholds``): validity (p ≥ τ under the model searched) and
implausibility (mean L2 to the 100 nearest target-class training rows). Cost: the jitted
forward pass of the MAP vs the probit (and MC) predictive on 10,000 rows, best of 10 calls each,
in 5 rounds (median and range of the per-round ratios); and the ratio of XLA's own FLOP
counts (``cost_analysis``), which the machine's load does not change.

    python experiments/laplace_calibration.py --sets california gmsc --seeds 0 1 2 --out laplace.json
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import numpy as np

import cfx


def _nll(p, y):
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None))))


def _best_time(fn, clf, x, repeats=30, clock=time.perf_counter):
    fn(clf, x).block_until_ready()
    best = np.inf
    for _ in range(repeats):
        t = clock()
        fn(clf, x).block_until_ready()
        best = min(best, clock() - t)
    return best


def timing(name: str, rounds: int = 20) -> dict:
    """Cost only (weights do not change it): the untrained default MLP of ``name`` and its Laplace
    probit / MC predictive, 10,000 rows; per round the best of 10 calls each, in CPU time of this
    process (``time.process_time``, all its threads: less sensitive to other jobs than wall time)
    and in wall time."""
    train, _ = cfx.data.train_test(cfx.data.load(name, n=2000, seed=0, balance=True), seed=0)
    clf = cfx.models.init(train, "mlp")
    probit = cfx.models.laplace(clf, train, prior_precision=1.0)
    mc = cfx.models.laplace(clf, train, prior_precision=1.0, predictive="mc", key=jax.random.key(0))
    big = np.asarray(np.resize(train.X, (10_000, train.X.shape[1])), np.float32)
    fwd = jax.jit(lambda c, z: c.raw_logits(z))
    out = {"set": name, "d": int(train.X.shape[1])}
    for clock_name, clock in (("cpu", time.process_time), ("wall", time.perf_counter)):
        r = []
        for _ in range(rounds):
            t0 = _best_time(fwd, clf, big, 10, clock)
            r.append((_best_time(fwd, probit, big, 10, clock) / t0, _best_time(fwd, mc, big, 10, clock) / t0))
        r = np.asarray(r)
        for j, key in enumerate(("probit", "mc100")):
            out[f"{clock_name}_ratio_{key}"] = [
                float(np.median(r[:, j])),
                float(np.percentile(r[:, j], 25)),
                float(np.percentile(r[:, j], 75)),
            ]
    return out


def run(name: str, seed: int, n: int, n_factuals: int, epochs: int, thresholds=(0.5, 0.9)) -> dict:
    data = cfx.data.load(name, n=n, seed=seed, balance=True)
    train, test = cfx.data.train_test(data, seed=seed)
    clf = cfx.models.fit(train, "mlp", epochs=epochs, seed=seed)
    models = {
        "map": clf,
        "laplace_probit": cfx.models.laplace(clf, train),
        "laplace_mc": cfx.models.laplace(clf, train, predictive="mc", key=jax.random.key(seed)),
        "laplace_diag": cfx.models.laplace(clf, train, hessian="diag"),
        "laplace_kfac": cfx.models.laplace(clf, train, hessian="kfac"),
    }
    out = {
        "set": name,
        "seed": seed,
        "n_train": len(train),
        "n_test": len(test),
        "d": train.X.shape[1],
        "prior_precision": float(models["laplace_probit"].params["prior_precision"]),
    }
    for key, model in models.items():
        p = np.asarray(model.probs(test.X))
        out[key] = {
            "accuracy": float(np.mean(p.argmax(1) == test.y)),
            "nll": _nll(p, test.y),
            "ece": cfx.models.expected_calibration_error(p, test.y),
        }
    rejected = (np.asarray(clf.predict(test.X)) == 0) & (np.asarray(models["laplace_probit"].predict(test.X)) == 0)
    x = test.X[rejected][:n_factuals]
    out["factuals"] = int(len(x))
    for key in ("map", "laplace_probit"):
        for tau in thresholds:
            gen = cfx.generators.make("greedy", threshold=tau)
            res = cfx.generate(gen, models[key], x, target=1, key=jax.random.key(seed))
            m = cfx.evaluate(res, models[key], data=train, metrics=["validity", "implausibility", "l1"])
            cell = {k: m["mean"][k] for k in ("validity", "implausibility", "l1")}
            cell["implausibility_sd"] = m["sd"]["implausibility"]
            out[key][f"schut_tau{tau:g}"] = cell
    big = np.asarray(np.resize(test.X, (10_000, test.X.shape[1])), np.float32)
    fwd = jax.jit(lambda c, z: c.raw_logits(z))
    # rounds of (forward, probit, mc) timings side by side: the machine's load drifts between rounds
    ratios = []
    for _ in range(5):
        t_map = _best_time(fwd, clf, big, 10)
        ratios.append(
            (
                _best_time(fwd, models["laplace_probit"], big, 10) / t_map,
                _best_time(fwd, models["laplace_mc"], big, 10) / t_map,
                t_map,
            )
        )
    ratios = np.asarray(ratios)
    out["time_forward_s"] = float(np.median(ratios[:, 2]))
    out["ratio_probit"] = [float(np.median(ratios[:, 0])), float(ratios[:, 0].min()), float(ratios[:, 0].max())]
    out["ratio_mc100"] = [float(np.median(ratios[:, 1])), float(ratios[:, 1].min()), float(ratios[:, 1].max())]
    flops = lambda c: fwd.lower(c, big).compile().cost_analysis()["flops"]  # XLA's count: load-free
    out["flops_ratio_probit"] = flops(models["laplace_probit"]) / flops(clf)
    out["flops_ratio_mc100"] = flops(models["laplace_mc"]) / flops(clf)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=["california", "gmsc"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--factuals", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--thresholds", nargs="+", type=float, default=[0.5, 0.9])
    ap.add_argument("--timing-only", action="store_true", help="cost ratios only, CPU and wall clock")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.timing_only:
        for name in args.sets:
            print(json.dumps(timing(name)), flush=True)
        return
    rows = []
    for name in args.sets:
        for seed in args.seeds:
            row = run(name, seed, args.n, args.factuals, args.epochs, tuple(args.thresholds))
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.out:  # atomic: a partial run leaves the previous complete file
                tmp = args.out + ".tmp"
                with open(tmp, "w") as fh:
                    json.dump(rows, fh, indent=1)
                os.replace(tmp, args.out)


if __name__ == "__main__":
    main()

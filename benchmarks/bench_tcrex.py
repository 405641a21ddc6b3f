"""Step cost of T-CREx against Generic: T-CREx's one step (choose a rule for every factual, move
it inside) against one step of Generic's search, each one compiled search over all factuals.

An MLP d→64→64→2 with random weights (as bench_mint.py), rules fitted on ``--rows`` random rows
labelled by the model (ρ = 0.02, τ = 0.9; the fit is host side and timed once), N factuals.
Generic (L1, cost 0.1) runs ``--steps`` steps (convergence ``max_steps``); T-CREx runs its one
step (edge points with metarule lookup; data points; optimal assignment). Best of ``--repeats``,
runs interleaved (the machine is shared: the best is the least disturbed).

    PYTHONPATH=. python benchmarks/bench_tcrex.py [--n 1000 --d 20 --rows 5000 --steps 100 --repeats 5]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import cfx
from cfx.generators import Generic, TCREx

from _timing import best_of
from bench_mint import mlp


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--d", type=int, default=20)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    clf = mlp(args.d)
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(args.rows, args.d)).astype(np.float32)
    x = rng.normal(size=(args.n, args.d)).astype(np.float32)
    target = 1 - np.asarray(clf.predict(x))
    start = time.perf_counter()
    tcrex = TCREx().fit(clf, rows, key=jax.random.key(0))
    fit_s = time.perf_counter() - start
    m = int(np.asarray(tcrex.rule_valid).sum(1).max())
    gens = {
        "generic": (Generic(cost=0.1), args.steps),
        "tcrex": (tcrex, 1),
        "tcrex-data": (tcrex.replace(point="data"), 1),
        "tcrex-optimal": (tcrex.replace(assign="optimal"), 1),
    }
    gens = {name: (g.replace(convergence="max_steps"), s) for name, (g, s) in gens.items()}  # every step
    run = {
        name: (
            lambda g=g, s=s: cfx.generate(
                g, clf, x, target, key=jax.random.key(0), max_steps=s
            ).counterfactuals.block_until_ready()
        )
        for name, (g, s) in gens.items()
    }
    best = best_of(run, args.repeats)
    per_step = {name: best[name] / (args.n * gens[name][1]) for name in best}
    print(
        f"n={args.n} d={args.d} rows={args.rows} (fit {fit_s:.2f} s host, up to {m} rules per class), "
        f"generic steps={args.steps}, best of {args.repeats} (shared machine)"
    )
    for name, t in best.items():
        print(
            f"{name:14s} {t:.4f} s  {1e6 * per_step[name]:.2f} µs per factual-step  "
            f"{per_step[name] / per_step['generic']:.2f}× a generic step"
        )


if __name__ == "__main__":
    main()

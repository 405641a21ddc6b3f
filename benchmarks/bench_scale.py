"""Scale: throughput and peak memory from 10^3 to 10^6 factuals, and early-exit compaction.

  python benchmarks/bench_scale.py sizes        # N = 1e3 ... 1e6, one process each: peak RSS, throughput
  python benchmarks/bench_scale.py compaction   # time-to-solution, compaction on vs off

sizes: Generic (L1 cost 0.1, η = 0.1) on a random MLP 20→64→64→2, 100 steps with a threshold
no row reaches (every row runs every step), the default chunking (on a CPU 10,000 rows per
compiled call, results gathered to the host chunk by chunk). Each N runs in a fresh process so that
its peak resident memory (ru_maxrss) is its own.

compaction: the plain early-exit while loop against compacted rounds of S steps, where
convergence is uneven: Generic on moons (max 1,000 steps; the threshold rule and CE.jl's
"generator conditions"), Wachter on GMSC (needs the data directory; skipped without it).
Cold = first call including compilation; warm = best of three calls.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import jax
import numpy as np

import cfx

WIDTHS = (20, 64, 64, 2)


def _mlp(params, x):
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def one_size(n: int, steps: int) -> dict:
    """Search n factuals in this process; returns timings and peak RSS."""
    keys = jax.random.split(jax.random.key(0), len(WIDTHS))
    params = [
        {"w": jax.random.normal(k, (a, b)) / np.sqrt(a), "b": jax.numpy.zeros(b)}
        for k, (a, b) in zip(keys, zip(WIDTHS[:-1], WIDTHS[1:]))
    ]
    clf = cfx.Classifier(_mlp, params, n_features=WIDTHS[0])
    x = np.asarray(jax.random.normal(keys[-1], (n, WIDTHS[0])), np.float32)
    began = time.perf_counter()
    res = cfx.generate(
        cfx.generators.Generic(threshold=1.0), clf, x, np.ones(n, np.int32), key=jax.random.key(1), max_steps=steps
    )
    wall = time.perf_counter() - began
    assert res.counterfactuals.shape == (n, 1, WIDTHS[0]) and int(np.asarray(res.steps).min()) == steps
    return {
        "n": n,
        "wall_s": wall,
        "compile_s": float(res.compile_s),
        "run_s": float(res.runtime_s),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def sizes(args) -> None:
    rows = []
    for n in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, "one", str(n), "--steps", str(args.steps)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(
            f"N = {n:>9,}: run {r['run_s']:8.2f}s  compile {r['compile_s']:5.2f}s  "
            f"{r['run_s'] / n * 1e6:7.2f} µs/factual  {n * args.steps / r['run_s']:12,.0f} factual-steps/s  "
            f"peak RSS {r['peak_rss_mb']:7.0f} MB",
            flush=True,
        )
    ref = next((r for r in rows if r["n"] == 10_000), rows[0])
    print(f"\n| N | run s | µs per factual | vs N = {ref['n']:,} | factual-steps/s | peak RSS (MB) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        per = r["run_s"] / r["n"]
        print(
            f"| {r['n']:,} | {r['run_s']:.2f} | {per * 1e6:.2f} | {per / (ref['run_s'] / ref['n']):.2f}x | "
            f"{r['n'] * args.steps / r['run_s']:,.0f} | {r['peak_rss_mb']:.0f} |"
        )


def _time_to_solution(generator, clf, x, target, repeats=3, **options):
    began = time.perf_counter()
    first = cfx.generate(generator, clf, x, target, **options)
    cold = time.perf_counter() - began
    warm = []
    for _ in range(repeats):
        began = time.perf_counter()
        cfx.generate(generator, clf, x, target, **options)
        warm.append(time.perf_counter() - began)
    return first, cold, min(warm)


def compaction(args) -> None:
    cases = []
    moons = cfx.data.load("moons", n=args.n, seed=0)
    clf = cfx.models.fit(moons, model="mlp", epochs=50, seed=0)
    x = np.asarray(moons.X)
    target = 1 - np.asarray(clf.predict(x))
    cases.append(("moons, Generic, threshold", cfx.generators.Generic(), clf, x, target, {}))
    cases.append(
        (
            "moons, Generic, generator conditions",
            cfx.generators.Generic(),
            clf,
            x,
            target,
            {"convergence": "generator_conditions"},
        )
    )
    try:
        gmsc = cfx.data.load("gmsc", data_dir=args.data_dir)
        model = cfx.models.fit(gmsc, model="mlp", epochs=20, seed=0)
        xg = np.asarray(gmsc.X[: args.n])
        wachter = cfx.generators.Wachter().fit(model, gmsc, key=jax.random.key(0))
        cases.append(
            (
                "GMSC, Wachter, threshold",
                wachter,
                model,
                xg,
                1 - np.asarray(model.predict(xg)),
                {"constraints": gmsc.schema.constraints()},
            )
        )
    except (FileNotFoundError, OSError) as err:
        print(f"GMSC skipped: {err}")
    print(
        f"device: {jax.devices()[0].platform}, {platform.processor() or platform.machine()}, jax {jax.__version__}; "
        f"max_steps {args.max_steps}"
    )
    print("| case | N | steps p50 / p90 / max | compact | cold s | warm s | warm vs off |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for label, generator, model, xs, ts, extra in cases:
        options = dict(key=jax.random.key(0), max_steps=args.max_steps, **extra)
        base = None
        for S in [None] + args.rounds:
            res, cold, warm = _time_to_solution(generator, model, xs, ts, compact=S, **options)
            base = base or warm
            steps = np.asarray(res.steps)
            print(
                f"| {label} | {len(xs):,} | {np.median(steps):.0f} / {np.percentile(steps, 90):.0f} / {steps.max()} | "
                f"{S or 'off'} | {cold:.2f} | {warm:.3f} | {base / warm:.2f}x |",
                flush=True,
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("sizes")
    s.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000, 1_000_000])
    s.add_argument("--steps", type=int, default=100)
    o = sub.add_parser("one")
    o.add_argument("n", type=int)
    o.add_argument("--steps", type=int, default=100)
    c = sub.add_parser("compaction")
    c.add_argument("--n", type=int, default=10_000)
    c.add_argument("--max-steps", type=int, default=1000)
    c.add_argument("--rounds", type=int, nargs="+", default=[25, 50, 100])
    c.add_argument("--data-dir", default=os.environ.get("CFX_DATA_DIR"))
    args = parser.parse_args(argv)
    if args.what == "one":
        print(json.dumps(one_size(args.n, args.steps)))
    else:
        (sizes if args.what == "sizes" else compaction)(args)


if __name__ == "__main__":
    main()

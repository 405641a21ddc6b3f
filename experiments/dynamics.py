"""Run a recourse-dynamics config and print its final-round table; or time the MMD test.

    python experiments/dynamics.py configs/dynamics.yaml [--out DIR] [--set key=value ...] [--resume]
    python experiments/dynamics.py --bench-mmd [--n 1000] [--permutations 1000]

The first form is ``cfx run`` for ``kind: dynamics`` configs (results folder, figures,
resumable); the second times one MMD² permutation test on n x n points (compile excluded).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def bench_mmd(n: int, permutations: int) -> None:
    import jax
    import numpy as np

    import cfx.dynamics

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(n, 2)).astype(np.float32), (rng.normal(size=(n, 2)) + 0.2).astype(np.float32)
    began = time.perf_counter()
    cfx.dynamics.mmd_test(x, y, key=jax.random.key(0), n_permutations=permutations)
    first = time.perf_counter() - began
    began = time.perf_counter()
    value, p = cfx.dynamics.mmd_test(x, y, key=jax.random.key(1), n_permutations=permutations)
    took = time.perf_counter() - began
    print(f"MMD² test, {n} x {n} points, {permutations} permutations: {took:.2f} s "
          f"(first call incl. compile {first:.2f} s); MMD² = {value:.4f}, p = {p:.3f}; "
          f"backend {jax.default_backend()}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", nargs="?", help="a kind: dynamics YAML config")
    ap.add_argument("--out", help="results folder (default: results/<name>)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="key.path=value override")
    ap.add_argument("--resume", action="store_true", help="continue an interrupted run of the same config")
    ap.add_argument("--force", action="store_true", help="delete an existing results folder first")
    ap.add_argument("--data-dir", help="where real data files are read from")
    ap.add_argument("--bench-mmd", action="store_true", help="time the MMD permutation test instead")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--permutations", type=int, default=1000)
    args = ap.parse_args(argv)
    if args.bench_mmd:
        bench_mmd(args.n, args.permutations)
        return 0
    if not args.config:
        ap.error("a config path is required (or --bench-mmd)")
    from cfx import experiments

    cfg = experiments.load_config(args.config, args.overrides, data_dir=args.data_dir, output=args.out)
    if cfg.kind != "dynamics":
        ap.error(f"{args.config} is a {cfg.kind!r} config; this script runs kind: dynamics")
    report = experiments.run(cfg, resume=args.resume, force=args.force)
    print(report.summary)
    print(f"results: {report.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

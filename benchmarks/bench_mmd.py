"""Time the unbiased MMD² permutation test of `cfx.dynamics` (n × n points, P permutations).

python benchmarks/bench_mmd.py [--n 1000] [--permutations 1000]
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
    print(
        f"MMD² test, {n} x {n} points, {permutations} permutations: {took:.2f} s "
        f"(first call incl. compile {first:.2f} s); MMD² = {value:.4f}, p = {p:.3f}; "
        f"backend {jax.default_backend()}"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--permutations", type=int, default=1000)
    args = ap.parse_args()
    bench_mmd(args.n, args.permutations)

"""Time one round's batch-1 retraining of the ard-2023 real-data grid (`cfx.dynamics.reference`):
4 systems per model (linear, MLP d → 64 → 64 → 1 with dropout 0.1, ensemble of 5 such MLPs),
10 epochs over ``--rows`` rows, one program per system (``retrain``) against all of them in one
(``retrain_many``). Wall and CPU seconds per round (the CPU time is the stable measure on a
shared machine).

    python benchmarks/bench_dynamics_retrain.py [--rows 4000] [--features 8] [--repeats 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@dataclasses.dataclass
class _Data:
    X: object
    y: object


def bench(rows: int, features: int, repeats: int) -> None:
    import jax
    import numpy as np

    from cfx.dynamics.reference import ReferenceTrainer

    rng = np.random.default_rng(0)
    datas = []
    for _ in range(4):
        X = rng.normal(size=(rows, features)).astype(np.float32)
        datas.append(_Data(X, (X[:, 0] + rng.normal(size=rows) > 0).astype(np.int32)))
    net = dict(widths=(64, 64), dropout=0.1, batch_size=500, retrain_batch_size=1, initial_epochs=1)
    trainers = [
        ReferenceTrainer("linear", batch_size=500, retrain_batch_size=1, initial_epochs=1),
        ReferenceTrainer("mlp", **net),
        ReferenceTrainer("ensemble", combine="probabilities", **net),
    ]
    jobs = [(t, t.initial(d, seed=0), d) for t in trainers for d in datas]
    ways = {
        "one program per system": lambda: [t.retrain(c, d, seed=0) for t, c, d in jobs],
        "all systems in one program": lambda: ReferenceTrainer.retrain_many(jobs),
    }
    for f in ways.values():  # compile
        jax.block_until_ready([c.params for c in f()])
    for _ in range(repeats):
        for name, f in ways.items():
            wall, cpu = time.perf_counter(), time.process_time()
            jax.block_until_ready([c.params for c in f()])
            print(
                f"{name}: {time.perf_counter() - wall:.2f} s wall, {time.process_time() - cpu:.2f} s CPU "
                f"(12 systems, {rows} rows, 10 batch-1 epochs)",
                flush=True,
            )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--features", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    bench(a.rows, a.features, a.repeats)

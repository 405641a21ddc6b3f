"""Where a batch-1 retraining step of the ard-2023 real-data grid goes (`cfx.dynamics.reference`):
CPU µs per step of ``_train_stacked`` for 1, 6 and 24 MLP members (d → 64 → 64 → 1, dropout
0.1), and for 24 members with the dropout layer as it is (``gradient_dropout``), replaced by
the identity, by a mask that ignores the input, and by a cheaper hash. Best of ``--repeats``
in one process (CPU time: the stable measure on a shared machine).

    python benchmarks/bench_dynamics_dropout.py [--rows 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def bench(rows: int, repeats: int) -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import cfx.dynamics.reference as R

    d, rate = 8, 0.1
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.normal(size=(1, rows, d)), jnp.float32)
    y = jnp.asarray((rng.normal(size=(1, rows)) > 0).astype(np.int32))
    train = R._train_stacked.__wrapped__  # unjitted: every variant below is traced afresh

    def cheap(h, r):  # one mix per unit instead of two plus a mixed reduction
        bits = jax.lax.bitcast_convert_type(h.astype(jnp.float32), jnp.uint32)
        odd = (jnp.arange(h.shape[-1], dtype=jnp.uint32) * jnp.uint32(0x9E3779B9)) | jnp.uint32(1)
        u = R._mix32(
            R._mix32(jnp.sum(bits * odd, -1, keepdims=True))
            + jnp.arange(h.shape[-1], dtype=jnp.uint32) * jnp.uint32(0x632BE5AB)
        )
        return h * jax.lax.stop_gradient(((u >> 8).astype(jnp.float32) / float(1 << 24) >= r) / (1.0 - r))

    fixed = lambda h, r: (
        h * jax.lax.stop_gradient(R._keep_mask(jnp.zeros_like(h) + jnp.arange(h.shape[-1], dtype=h.dtype), r))
    )
    current = R.gradient_dropout
    cases = [
        (1, "as is", current),
        (6, "as is", current),
        (24, "as is", current),
        (24, "identity", lambda h, r: h),
        (24, "mask ignoring the input", fixed),
        (24, "cheaper hash", cheap),
    ]
    programs = []
    try:
        for members, label, layer in cases:
            R.gradient_dropout = layer
            net = R.OneLogitNet("mlp", widths=(64, 64), dropout=rate)
            params = jax.vmap(lambda k, net=net: net.init(k, d))(jax.random.split(jax.random.key(0), members))
            owner = jnp.zeros(members, jnp.int32)
            f = (
                jax.jit(
                    lambda p, net=net, owner=owner: train(
                        net, p, X, y, owner, jnp.int32(1), learning_rate=1e-3, batch_size=1
                    )
                )
                .lower(params)
                .compile()
            )
            programs.append((members, label, f, params))
    finally:
        R.gradient_dropout = current
    best = [float("inf")] * len(programs)
    for _ in range(repeats):
        for i, (_, _, f, params) in enumerate(programs):
            cpu = time.process_time()
            jax.block_until_ready(f(params))
            best[i] = min(best[i], time.process_time() - cpu)
    for (members, label, _, _), b in zip(programs, best):
        print(f"{members:>2} members, dropout layer {label}: {b / rows * 1e6:.0f} µs CPU per step")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    bench(a.rows, a.repeats)

"""How peaked a trained LS JEM's class-conditionals are: the paper's metric sampler run on each JEM
(and each JEM-ensemble member), and the median distance of its kept samples to the nearest class
centre (docs/eccco.md, "Session 33": ours 0.14, the reference's 0.39).

    git -C /work/.mirror/pat-alt+ECCCo.jl/repo show main:models/linearly_separable_models.jls > ls.jls
    python experiments/eccco_jem_peak.py --reference ls.jls RUN [RUN ...]

RUN: a ``preset: eccco-2024`` results folder with linearly separable models. The sampler is
ECCCo.jl's ``EnergySampler`` as :func:`cfx.sampling.per_target_samples` runs it (one uniform start,
95 % of 50 chains from it, 500 steps of the clipped batch-mean SGLD, 25 kept by −log p), on the
scalar box of the model's training buffer; 20 draws per target, both targets averaged.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eccco_reference_models import chains  # noqa: E402

from cfx.experiments.kinds.eccco.preset import LS_CENTERS  # noqa: E402

CENTRES = np.asarray(LS_CENTERS, np.float32)


def _logits(params, x):
    p = params["params"]
    for i in range(len(p) - 1):
        x = jax.nn.swish(x @ p[f"hidden_{i}"]["kernel"] + p[f"hidden_{i}"]["bias"])
    return x @ p["logits"]["kernel"] + p["logits"]["bias"]


def _draw(params, t, key, lo, hi, n=50, steps=500, keep=25):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    start = jax.random.uniform(k1, (1, 2), minval=lo, maxval=hi)
    fresh = jax.random.uniform(k2, (n, 2), minval=lo, maxval=hi)
    x = jnp.where(jax.random.uniform(k3, (n, 1)) < 0.05, fresh, start)
    energy = lambda x: -jnp.mean(_logits(params, x)[:, t])  # noqa: E731

    def step(x, k):
        return x - jnp.clip(jax.grad(energy)(x), -0.01, 0.01) + 0.01 * jax.random.normal(k, x.shape), None

    x = jnp.clip(jax.lax.scan(step, x, jax.random.split(k4, steps))[0], lo, hi)
    return x[jnp.argsort(-jax.nn.log_softmax(_logits(params, x))[:, t])[:keep]]


_draws = jax.jit(jax.vmap(_draw, in_axes=(None, None, 0, None, None)), static_argnums=1)


def peak(params, lo: float, hi: float) -> float:
    """Median distance of the kept samples to the nearest class centre, averaged over both targets."""
    out = []
    for t in (0, 1):
        S = np.asarray(_draws(params, t, jax.random.split(jax.random.key(7), 20), lo, hi)).reshape(-1, 2)
        out.append(np.median(np.linalg.norm(S[:, None] - CENTRES[None], axis=-1).min(1)))
    return float(np.mean(out))


def _members(path: Path) -> list:
    stacked = flax.serialization.msgpack_restore(path.read_bytes())
    n = jax.tree_util.tree_leaves(stacked)[0].shape[0]
    return [jax.tree_util.tree_map(lambda a, i=i: a[i], stacked) for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", type=Path, nargs="*")
    ap.add_argument("--reference", type=Path, help="ECCCo.jl's models/linearly_separable_models.jls")
    args = ap.parse_args()
    if args.reference is not None:
        b = args.reference.read_bytes()
        i = b.find(bytes.fromhex("15000d1402e13110270000"))  # the (2, 10000) Float32 sampler buffer
        buf = np.frombuffer(b[i + 11 : i + 11 + 80_000], "<f4")
        nets = chains(args.reference)
        v = [peak(p, float(buf.min()), float(buf.max())) for p in nets[:6]]
        print(f"reference: JEM {v[0]:.3f}, members {np.round(v[1:], 3).tolist()}")
    for run in args.runs:
        base = run / "models" / "linearly_separable"
        box = np.load(base / "jem" / "run000.npz")
        lo, hi = float(box["buffer_lower"]), float(box["buffer_upper"])
        jem = peak(flax.serialization.msgpack_restore((base / "jem" / "run000.msgpack").read_bytes()), lo, hi)
        members = [peak(p, lo, hi) for p in _members(base / "jem_ensemble" / "run000.msgpack")]
        print(f"{run.name}: JEM {jem:.3f}, members {np.round(members, 3).tolist()}")


if __name__ == "__main__":
    main()

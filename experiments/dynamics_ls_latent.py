"""Linearly separable data under the ard-2023 preset: where does REVISE's VAE decode, and is
that point on the target side of the initial models' boundary? One realisation per seed.

    python experiments/dynamics_ls_latent.py [N_SEEDS]

Prints p(y+ | data mean) under M0 (linear, MLP, ensemble) per seed, and for the first three
seeds the spread of the decoded class-0 points and of decoded z ~ N(0, 9I) (docs/dynamics.md).
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

import cfx
import cfx.generators as G
from cfx.dynamics.reference import ReferenceTrainer, generator_options

out = {k: [] for k in ("linear", "mlp", "ensemble")}
dec = []
for s in range(int(sys.argv[1]) if len(sys.argv) > 1 else 10):
    full = cfx.data.load("linearly_separable", n=1000, seed=s, centers=[[0.5, -0.1], [-0.3, 0.85]])
    train, test = cfx.data.train_test(full, test_size=0.2, seed=s, standardize=False)
    m = np.asarray(full.X).mean(0)
    for kind in out:
        clf = ReferenceTrainer(kind, combine="probabilities").initial(train, seed=s)
        out[kind].append(float(np.asarray(clf.probs(m[None]))[0, 1]))
    if s < 3:
        gen = G.make("revise", **generator_options("revise")).fit(clf, train, key=jax.random.key(s))
        x0 = np.asarray(train.X)[np.asarray(train.y) == 0][:200]
        xh = np.asarray(gen.vae.decode(gen.vae.encode(jnp.asarray(x0))))
        zs = np.asarray(jax.random.normal(jax.random.key(1), (200, 2))) * 3
        xz = np.asarray(gen.vae.decode(jnp.asarray(zs)))
        dec.append((s, xh.mean(0).round(2), xh.std(0).round(3), xz.std(0).round(3), m.round(2)))
    print(s, {k: round(v[-1], 3) for k, v in out.items()}, flush=True)
for k, v in out.items():
    v = np.asarray(v)
    print(k, "p(target | data mean) >= 0.5 in", int((v >= 0.5).sum()), "of", len(v))
for d in dec:
    print(
        "seed",
        d[0],
        "decoded class-0 points: mean",
        d[1],
        "sd",
        d[2],
        "| decoded z~N(0,9I): sd",
        d[3],
        "| data mean",
        d[4],
    )

"""Step cost of MINT against Generic: one compiled search each, every row running every step.

An MLP d→64→64→2 with random weights, N factuals, ``--steps`` steps with convergence
``max_steps``; Generic (L1, cost 0.1) against MINT (L1 on the action, cost 0.1) with a linear
SCM on a chain x0 → x1 → … → x_{d−1} (weights 0.5) and with MLP equations (8 units) on the same
graph. Each generator is compiled once, then the runs are interleaved and the best of
``--repeats`` is kept (the machine is shared: the best is the least disturbed).

    PYTHONPATH=. python benchmarks/bench_mint.py [--n 1000 --d 20 --steps 100 --repeats 5]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import cfx
from cfx.causal import linear_scm
from cfx.generators import MINT, Generic

from _timing import best_of


def mlp(d: int, seed: int = 0) -> cfx.Classifier:
    keys = jax.random.split(jax.random.key(seed), 3)
    sizes = [(d, 64), (64, 64), (64, 2)]
    params = [{"w": jax.random.normal(k, s) / np.sqrt(s[0]), "b": jnp.zeros(s[1])} for k, s in zip(keys, sizes)]

    def apply(p, x):
        for layer in p[:-1]:
            x = jax.nn.relu(x @ layer["w"] + layer["b"])
        return x @ p[-1]["w"] + p[-1]["b"]

    return cfx.Classifier(apply, params, n_features=d)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--d", type=int, default=20)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    d = args.d
    chain = [[]] + [[j - 1] for j in range(1, d)]
    scm = linear_scm(chain, [[]] + [[0.5]] * (d - 1))
    mlp_scm = scm.replace(
        mlp={
            "A": 0.3 * jax.random.normal(jax.random.key(1), (d, d, 8)),
            "c": jnp.zeros((d, 8)),
            "v": 0.3 * jax.random.normal(jax.random.key(2), (d, 8)),
        }
    )
    clf = mlp(d)
    x = np.random.default_rng(0).normal(size=(args.n, d)).astype(np.float32)
    target = 1 - np.asarray(clf.predict(x))
    gens = {
        "generic": Generic(cost=0.1),
        "mint-linear": MINT(scm=scm, cost=0.1),
        "mint-mlp": MINT(scm=mlp_scm, cost=0.1),
    }
    gens = {name: g.replace(convergence="max_steps") for name, g in gens.items()}  # every step
    run = {
        name: (
            lambda g=g: cfx.generate(
                g, clf, x, target, key=jax.random.key(0), max_steps=args.steps
            ).counterfactuals.block_until_ready()
        )
        for name, g in gens.items()
    }
    best = best_of(run, args.repeats)
    print(f"n={args.n} d={d} steps={args.steps}, best of {args.repeats} (shared machine)")
    for name, t in best.items():
        print(
            f"{name:12s} {t:.3f} s  {1e6 * t / (args.n * args.steps):.2f} µs per factual-step  "
            f"{t / best['generic']:.2f}× generic"
        )


if __name__ == "__main__":
    main()

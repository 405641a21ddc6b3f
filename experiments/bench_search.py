"""Throughput of the batched search against a hand-written kernel and a per-factual loop.

Three ways to run Generic (L1 cost 0.1, plain gradient descent, η = 0.1) for N factuals and
100 steps on an MLP 20→64→64→2, with a threshold no row reaches so every row runs every step:

  cfx        cfx.generate: one compiled while-loop with done-masks, constraints, per-term report
  kernel     jax.jit(jax.vmap(fixed-length lax.scan of the same loss and update)): no
             convergence test at all — the practical limit on this machine
  loop       a Python loop over factuals, each calling a jitted single-factual search (how
             most libraries work): cfx.generate on one factual, compiled once, with the same
             convergence test and constraints; timed on a subset, reported per factual-step
  loop-scan  the same loop over the bare jitted single-factual scan of the kernel (no
             checks, no convergence test): the cheapest possible per-factual call

Prints factual-steps per second for each and the ratios cfx/kernel and cfx/loop.

    python experiments/bench_search.py            # N = 10,000
    python experiments/bench_search.py --n 2000 --loop-n 200
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

import cfx
from cfx import losses

WIDTHS = (20, 64, 64, 2)
COST, LEARNING_RATE = 0.1, 0.1


def init_mlp(key, widths=WIDTHS):
    params = []
    for k, (fan_in, fan_out) in zip(jax.random.split(key, len(widths) - 1), zip(widths[:-1], widths[1:])):
        params.append({"w": jax.random.normal(k, (fan_in, fan_out)) / np.sqrt(fan_in), "b": jnp.zeros(fan_out)})
    return params


def mlp(params, x):
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def single_factual_scan(params, x, target, steps):
    """The reference kernel for one factual: x' <- x' - η ∇[CE(f(x'), y+) + 0.1·||x' - x||_1]."""

    def loss(x_cf):
        return losses.cross_entropy(mlp(params, x_cf[None])[0], target) + COST * losses.l1(x_cf, x)

    def step(x_cf, _):
        return x_cf - LEARNING_RATE * jax.grad(loss)(x_cf), None

    return jax.lax.scan(step, x, None, length=steps)[0]


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="factuals (default 10,000)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--loop-n", type=int, default=300, help="factuals timed in the per-factual loop")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    key_params, key_x = jax.random.split(jax.random.key(0))
    params = init_mlp(key_params)
    clf = cfx.Classifier(mlp, params, n_features=WIDTHS[0])
    x = np.asarray(jax.random.normal(key_x, (args.n, WIDTHS[0])), np.float32)
    target = np.ones(args.n, np.int32)
    generator = cfx.generators.Generic(cost=COST, learning_rate=LEARNING_RATE)
    work = args.n * args.steps

    def run_cfx():
        return cfx.generate(generator, clf, x, target, key=jax.random.key(1), max_steps=args.steps,
                            threshold=1.0).counterfactuals

    first = cfx.generate(generator, clf, x, target, key=jax.random.key(1), max_steps=args.steps, threshold=1.0)
    t_cfx = best_of(run_cfx, args.repeats)

    kernel = jax.jit(jax.vmap(single_factual_scan, (None, 0, 0, None)), static_argnums=3)
    xj, tj = jnp.asarray(x), jnp.asarray(target)
    jax.block_until_ready(kernel(params, xj, tj, args.steps))
    t_kernel = best_of(lambda: kernel(params, xj, tj, args.steps), args.repeats)

    m = min(args.loop_n, args.n)
    one_key = jax.random.key(1)

    def run_loop():
        return [cfx.generate(generator, clf, x[i], 1, key=one_key, max_steps=args.steps, threshold=1.0).counterfactuals
                for i in range(m)]

    run_loop()  # compile the single-factual program once
    t_loop = best_of(run_loop, 1) * args.n / m

    single = jax.jit(single_factual_scan, static_argnums=3)
    jax.block_until_ready(single(params, xj[0], tj[0], args.steps))
    t_loop_scan = best_of(lambda: [single(params, xj[i], tj[i], args.steps) for i in range(m)], 1) * args.n / m

    gap = np.abs(np.asarray(first.counterfactuals[:, 0]) - np.asarray(kernel(params, xj, tj, args.steps)))
    timings = (("cfx", t_cfx), ("kernel", t_kernel), ("loop", t_loop), ("loop-scan", t_loop_scan))
    rate = {name: work / t for name, t in timings}
    print(f"device: {jax.devices()[0].platform} x{jax.device_count()}, {platform.processor() or platform.machine()}, "
          f"jax {jax.__version__}")
    print(f"N = {args.n}, steps = {args.steps}, MLP {'->'.join(map(str, WIDTHS))}, "
          f"rows converged: {int(first.converged.sum())}, steps taken: {int(first.steps.min())}..{int(first.steps.max())}")
    # L1's subgradient flips sign at x' = x, so float rounding can differ by one step η·cost.
    print(f"|cfx - kernel|: median {np.median(gap):.1e}, max {gap.max():.1e} (same loss and update)")
    print(f"{'method':<10} {'seconds':>9} {'factual-steps/s':>16}")
    for name, t in timings:
        print(f"{name:<10} {t:9.3f} {rate[name]:16,.0f}")
    print(f"cfx / kernel = {rate['cfx'] / rate['kernel']:.2f}x   cfx / loop = {rate['cfx'] / rate['loop']:.1f}x   "
          f"cfx / loop-scan = {rate['cfx'] / rate['loop-scan']:.1f}x")
    print(f"(loops timed on {m} factuals and scaled to N; compilation excluded everywhere; "
          f"cfx compile {first.compile_s:.2f}s)")


if __name__ == "__main__":
    main()

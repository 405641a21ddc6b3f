"""Benchmark: one counterfactual-training epoch vs one plain cross-entropy epoch, same data.

    python experiments/bench_ct.py [--data moons] [--n 1000] [--n-ce 1000] [--widths 32 32] [--repeats 5]

Both epochs are one compiled call each (``cfx.training.ct_epoch``: ECCo search for n_ce factuals
with ≤ T steps plus every train step; ``cfx.models.train._run_epoch``: the train steps). Each is
compiled once and then timed ``--repeats`` times (median and minimum, after ``block_until_ready``); the
compile time is reported separately. Target (issue 8): CT epoch ≤ 3× the plain epoch.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import cfx
from cfx.constraints import MUTABILITY
from cfx.models import train as _train
from cfx.models.step import TrainState
from cfx.training import CTConfig, CTWeights, EpochSpec, TrainingData, ct_epoch, generator, search_constraints


def _timed(fn, repeats: int) -> tuple[float, float, float]:
    """(first call incl. compile, median and minimum of the next ``repeats`` calls) in seconds.
    The minimum is the least disturbed by other processes on a shared machine."""
    start = time.perf_counter()
    jax.block_until_ready(fn(0))
    first = time.perf_counter() - start
    times = []
    for r in range(1, repeats + 1):
        start = time.perf_counter()
        jax.block_until_ready(fn(r))
        times.append(time.perf_counter() - start)
    return first, statistics.median(times), min(times)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="moons")
    p.add_argument("--n", type=int, default=1000, help="rows loaded (80%% train)")
    p.add_argument("--n-ce", type=int, default=1000)
    p.add_argument("--max-steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--widths", type=int, nargs="*", default=[32, 32])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--fit-epochs", type=int, default=0,
                   help="also time whole fits of this many epochs (CT vs baseline, same seed), compiled beforehand")
    args = p.parse_args(argv)

    data = cfx.data.load(args.data, n=args.n, seed=0, data_dir=args.data_dir)
    train, _ = cfx.data.train_test(data)
    ct = CTConfig(n_ce=min(args.n_ce, len(train)), max_steps=args.max_steps)
    X, y = _train._check_dataset(train)
    n, d = X.shape
    n_classes = max(int(y.max()) + 1, 2)
    apply, _, n_out = _train._build("mlp", d, n_classes=n_classes, widths=tuple(args.widths), activation="relu",
                                    dropout=0.0, n_members=1)
    params = apply.init(jax.random.key(0), d)
    state = TrainState(step=jnp.zeros((), jnp.int32), params=params,
                       opt_state=_train._init_opt_state(params, 1e-3, 0.0), extra=None)
    batch = min(args.batch_size, n)

    plain_spec = _train._Spec(apply=apply, loss=cfx.models.cross_entropy, batch_size=batch)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    plain_first, plain, plain_min = _timed(lambda r: _train._run_epoch(plain_spec, state, Xj, yj, jax.random.key(r)),
                                args.repeats)

    constraints = search_constraints(train, ct)
    spec = EpochSpec(apply=apply, n_features=d, n_classes=n_out, batch_size=batch, n_ce=ct.n_ce,
                     max_steps=ct.max_steps, epsilon=ct.epsilon, tx=_train._TX)
    tdata = TrainingData.create(X, y, n_out)
    weights = CTWeights.create(ct.weights(), [MUTABILITY.index(m) for m in constraints.mutability])
    gen, resolved = generator(ct), constraints.resolve(d)
    ct_first, ct_time, ct_min = _timed(lambda r: ct_epoch(state, tdata, jax.random.key(r), weights, gen, resolved, spec=spec),
                               args.repeats)
    out = {"data": args.data, "n_train": n, "d": d, "n_ce": ct.n_ce, "max_steps": ct.max_steps, "batch_size": batch,
           "widths": args.widths, "backend": jax.default_backend(), "plain_epoch_s": plain, "ct_epoch_s": ct_time,
           "ratio": ct_time / plain, "plain_epoch_min_s": plain_min, "ct_epoch_min_s": ct_min,
           "ratio_min": ct_min / plain_min, "plain_compile_s": plain_first - plain, "ct_compile_s": ct_first - ct_time}
    if args.fit_epochs:
        out.update(_fit_epochs(train, ct, args))
    print(json.dumps(out))
    return out


def _fit_epochs(train, ct: CTConfig, args) -> dict:
    """Mean epoch time over whole fits (``fit_ct``, CT vs its baseline variant, the same
    model, seed and epochs), each fit timed after a one-epoch fit has compiled its epoch.

    Unlike the single epoch above (the model at initialisation, where the search runs to T),
    this is the cost a user pays: as the model learns, the searches converge in fewer steps.
    """
    import dataclasses

    from cfx.training import fit_ct

    options = dict(widths=tuple(args.widths), batch_size=args.batch_size, seed=0)
    configs = {"ct": ct, "baseline": dataclasses.replace(ct, variant="baseline")}
    for cfg in configs.values():  # compile both epochs
        fit_ct(train, "mlp", ct=cfg, epochs=1, **options)
    seconds, out = {}, {}
    for name, cfg in configs.items():
        start = time.perf_counter()
        res = fit_ct(train, "mlp", ct=cfg, epochs=args.fit_epochs, **options)
        jax.block_until_ready(res.state.params)
        seconds[name] = (time.perf_counter() - start) / args.fit_epochs
        if name == "ct":
            out["fit_search_steps_first_last"] = [float(res.history["search_steps"][0]),
                                                  float(res.history["search_steps"][-1])]
    return {**out, "fit_epochs": args.fit_epochs, "fit_plain_epoch_s": seconds["baseline"],
            "fit_ct_epoch_s": seconds["ct"], "fit_ratio": seconds["ct"] / seconds["baseline"]}


if __name__ == "__main__":
    main()

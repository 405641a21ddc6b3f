"""Retrain some models of a finished ``preset: eccco-2024`` run from Flux's initialisation
(Glorot-uniform kernels, zero biases: Flux's ``Dense`` default) instead of flax's (LeCun-normal
kernels), with the same data split, seed, settings and training loop, and write them over the
run's models; ``cfx run RUN/config.yaml --out RUN --resume`` then recomputes the cells (the models
are recalibrated on restore). Separates the initialisation from the other training differences.

    cp -r RUN G && rm -rf G/cells G/*.csv G/*.md
    python experiments/eccco_glorot.py G moons mlp ensemble
    cfx run G/config.yaml --out G --resume
"""

from __future__ import annotations

import sys
from pathlib import Path

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

import cfx.models
from cfx.experiments import load_config
from cfx.experiments.kinds.eccco import runner


def glorot(params, key):
    """Every Dense kernel (…, fan_in, fan_out) ~ U(±sqrt(6 / (fan_in + fan_out))), biases 0."""
    leaves, tree = jax.tree_util.tree_flatten_with_path(params)
    keys = jax.random.split(key, len(leaves))
    out = []
    for (path, leaf), k in zip(leaves, keys):
        if str(path[-1]).endswith("'kernel']"):
            fan_in, fan_out = leaf.shape[-2:]
            lim = float(np.sqrt(6.0 / (fan_in + fan_out)))
            out.append(jax.random.uniform(k, leaf.shape, leaf.dtype, -lim, lim))
        else:
            out.append(jnp.zeros_like(leaf))
    return jax.tree_util.tree_unflatten(tree, out)


def main() -> None:
    results, data, models = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    cfg = load_config(results / "config.yaml")
    dc = next(d for d in cfg.data if d.key == data)
    fit = runner._split(dc, cfg, 0)[0]
    for mc in cfg.models:
        if mc.key not in models:
            continue
        spec = runner.model_spec(dc, mc)
        kw = runner._fit_kwargs(spec)
        seed = runner.derive_seed(cfg.seed, 0, "model", dc.key, mc.key)
        start = cfx.models.init(fit, spec.name, seed=seed, **{k: v for k, v in kw.items() if k != "loss"})
        params = glorot(start.params, jax.random.key(seed))
        clf = cfx.models.fit(fit, spec.name, seed=seed, init_params=params, **kw)
        target = results / "models" / data / mc.key / "run000.msgpack"
        target.write_bytes(flax.serialization.to_bytes(clf.params))
        print(f"{data}/{mc.key}: retrained from Glorot-uniform initialisation -> {target}")


if __name__ == "__main__":
    main()

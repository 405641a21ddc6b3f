"""One-model probes behind docs/ct.md ("Every cell against the paper").

Baseline vs CT with ct-2026's training search on one synthetic set, every feature mutable, scored with the
pooled evaluation (per-individual pairs, 50 rounds of 250, T = 50 unless overridden); prints per probe the
per-λ_egy IP and IP* reductions, then the IP reduction with its within-run sd, the absolute IP, the cost,
the evaluation's mean steps and the training search's last-epoch maturity and L1 travel. Each argument is a
JSON object of :func:`run`'s keywords::

    python experiments/ct_probe.py '{"seed": 0}' '{"seed": 0, "init": "glorot"}' \\
        '{"name": "moons", "tau": 0.9, "lreg": 0.25}' '{"tau": 0.5, "lreg": 0.25, "eval_over": {"max_steps": 100}}'

``data_seed`` (default ``seed``) draws the data and split alone, so data and initialisation can be varied apart.
"""

from __future__ import annotations

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

import cfx
from cfx.experiments.kinds.ct.reference import SYNTHETIC_OPTIONS
from cfx.generators import ECCo
from cfx.generators.eccco import polynomial_schedule
from cfx.models.mlp import MLP
from cfx.training import CTConfig, fit_ct, search_constraints
from cfx.training.pool import PoolSpec, draw_labels, evaluate_pool, pooled_reduction, round_means


def glorot(shapes, key):
    """Flux's Dense initialisation: Glorot-uniform kernels, zero biases."""
    out = {}
    for name, layer in shapes["params"].items():
        fan_in, fan_out = layer["kernel"].shape
        lim = np.sqrt(6 / (fan_in + fan_out))
        key, sub = jax.random.split(key)
        out[name] = {
            "kernel": jax.random.uniform(sub, (fan_in, fan_out), minval=-lim, maxval=lim),
            "bias": jnp.zeros_like(layer["bias"]),
        }
    return {"params": out}


def run(
    name="linearly_separable",
    seed=0,
    init="lecun",
    tau=0.9,
    lreg=0.5,
    epochs=100,
    rounds=50,
    ct_over=None,
    eval_over=None,
    data_opts=None,
    data_seed=None,
):
    opts = dict(SYNTHETIC_OPTIONS.get(name, {}))
    opts.update(data_opts or {})
    data_seed = seed if data_seed is None else data_seed  # the data draw and split; ``seed``: model and evaluation
    data = cfx.data.load(name, n=3900, seed=data_seed, **opts)
    train, test = cfx.data.train_test(data, test_size=900 / 3900, seed=data_seed)
    settings = dict(
        lambda_ce=1.0,
        lambda_div=0.5,
        lambda_adv=0.25,
        max_steps=30,
        learning_rate=0.1,
        cost=0.001,
        energy=5.0,
        epsilon=0.3,
        domain_sd=2.0,
        stop="threshold",
        energy_decay="polynomial",
        ridge=0.001,
        domain_covers_data=True,
        threshold=tau,
        lambda_reg=lreg,
        n_ce=1000,
    )
    settings.update(ct_over or {})
    search = {k: settings.pop(k) for k in ("learning_rate", "cost", "energy", "ridge", "threshold")}
    schedule = polynomial_schedule(settings["max_steps"]) if settings.pop("energy_decay") == "polynomial" else {}
    settings["generator"] = ECCo(convergence=settings.pop("stop"), **search, **schedule)  # CT's search
    ev = dict(learning_rate=0.1, max_steps=50, cost=0.0, ridge=1e-3, threshold=0.95)
    ev.update(eval_over or {})
    res = {}
    for variant in ("baseline", "ct"):
        ct = CTConfig(variant=variant, **settings)
        init_params = None
        if init == "glorot":
            module = MLP(widths=(32,), n_classes=2)
            init_params = glorot(module.init(jax.random.key(seed + 7), jnp.zeros((1, 2))), jax.random.key(seed + 11))
        out = fit_ct(
            train,
            "mlp",
            ct=ct,
            seed=seed,
            widths=(32,),
            epochs=epochs,
            batch_size=30,
            learning_rate=1e-3,
            init_params=init_params,
        )
        spec = PoolSpec(
            rounds=rounds,
            n_individuals=250,
            max_steps=ev["max_steps"],
            threshold=ev["threshold"],
            learning_rate=ev["learning_rate"],
        )
        gen = ECCo(
            cost=ev["cost"],
            learning_rate=ev["learning_rate"],
            ridge=ev["ridge"],
            threshold=ev["threshold"],
            **polynomial_schedule(ev["max_steps"]),
        )
        factual, target = draw_labels(2, 250, seed + 100)
        o = evaluate_pool(
            out.classifier,
            test,
            gen,
            spec=spec,
            factual=factual,
            target=target,
            constraints=search_constraints(train, ct),
            key=jax.random.key(seed),
            seed=seed + 200,
        )
        h = out.history
        res[variant] = {
            "ip": round_means(o["ip"]),
            "ip_star": round_means(o["ip_star"]),
            "cost": float(np.nanmean(round_means(o["cost"]))),
            "steps": float(o["steps"].mean()),
            "lam_ip": np.nanmean(o["ip"], axis=(1, 2)),
            "lam_ip_star": np.nanmean(o["ip_star"], axis=1),
            "mature": float(np.mean(h["mature_share"][-5:])) if "mature_share" in h else None,
            "cf_l1": float(np.mean(h["cf_l1"][-5:])) if "cf_l1" in h else None,
        }
    b, c = res["baseline"], res["ct"]
    red = pooled_reduction(b["ip"], c["ip"])
    pct = lambda x, y: [round(float(100 * (1 - v / u)), 1) for u, v in zip(x, y)]
    print(
        json.dumps(
            {
                "probe": dict(
                    name=name,
                    seed=seed,
                    data_seed=data_seed,
                    init=init,
                    tau=tau,
                    lreg=lreg,
                    ct_over=ct_over,
                    eval_over=eval_over,
                    data_opts=data_opts,
                ),
                "ip_red": round(red["reduction"], 1),
                "ip_sd_within": round(red["se"], 1),
                "ip_star_red": round(pooled_reduction(b["ip_star"], c["ip_star"])["reduction"], 1),
                "per_lambda_ip_red": pct(b["lam_ip"], c["lam_ip"]),
                "per_lambda_ip_star_red": pct(b["lam_ip_star"], c["lam_ip_star"]),
                "ip_bl_ct": [round(float(np.nanmean(b["ip"])), 3), round(float(np.nanmean(c["ip"])), 3)],
                "cost_bl_ct": [round(b["cost"], 3), round(c["cost"], 3)],
                "eval_steps_bl_ct": [round(b["steps"], 1), round(c["steps"], 1)],
                "train_mature": c["mature"],
                "train_cf_l1": c["cf_l1"],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["{}"]:
        run(**json.loads(arg))

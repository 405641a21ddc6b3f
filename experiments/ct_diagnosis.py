"""Diagnosis of issue 21's new-user case (docs/ct.md, "Why cfx's CT raised IP").

Overlapping blobs (cfx.data.load("overlapping"), default n and split), ``cfx.models.fit(train, "mlp",
seed=0, epochs=60)`` against ``cfx.training.fit`` with the same options, counterfactuals from ``ECCo()`` at its
defaults for every test point (target = the other class). For each CT semantics it prints where the
training search's counterfactuals land (per-epoch history of ``fit_ct``) and, for each model, IP,
validity, steps, and the input-gradient norm of the target logit at the test points.

    python experiments/ct_diagnosis.py [--epochs 60] [--seed 0]
"""

from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np

import cfx
from cfx.generators.eccco import ECCo, polynomial_schedule
from cfx.training import CTConfig, fit_ct
from cfx.evaluation.population import ip as implausibility, sample_bank

SEMANTICS = {
    "cfx default": CTConfig(),
    "ct-2026 (reference)": CTConfig(
        generator=ECCo(ridge=1e-3, learning_rate=0.1, **polynomial_schedule(30)),
        domain_covers_data=True,
        lambda_reg=0.25,
    ),
    "cfx default + polynomial decay only": CTConfig(generator=ECCo(**polynomial_schedule(30))),
    "cfx default + data-covering box only": CTConfig(domain_covers_data=True),
}


def score(clf, train, test, gen, max_steps=100):
    pred = np.asarray(clf.predict(test.X))
    target = 1 - pred
    res = cfx.generate(gen, clf, test.X, target, key=jax.random.key(0), max_steps=max_steps)
    cf = np.asarray(res.counterfactuals)[:, 0]
    ok = np.asarray(res.outcome)[:, 0] == 0
    bank, mask = sample_bank(train.X, train.y, 2, 1000)
    ip = implausibility(cf, target, bank, mask)
    grad = jax.vmap(jax.grad(lambda x, t: clf.raw_logits(x[None])[0, t]))(jnp.asarray(test.X), jnp.asarray(target))
    return {
        "accuracy": float((pred == test.y).mean()),
        "validity": float(ok.mean()),
        "ip_valid": float(ip[ok].mean()) if ok.any() else float("nan"),
        "steps": float(np.asarray(res.steps).mean()),
        "cf_l1": float(np.abs(cf - test.X).sum(1).mean()),
        "grad_norm": float(np.linalg.norm(np.asarray(grad), axis=1).mean()),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    train, test = cfx.data.train_test(cfx.data.load("overlapping"))
    evals = {
        "ECCo() defaults": cfx.generators.ECCo(),
        "ECCo reference eval (λ_cost 0, λ_egy 1, η 0.1, poly. φ, τ .95, T 50)": cfx.generators.ECCo(
            cost=0.0, energy=1.0, ridge=1e-3, learning_rate=0.1, threshold=0.95, **polynomial_schedule(50)
        ),
    }
    plain = cfx.models.fit(train, model="mlp", seed=args.seed, epochs=args.epochs)
    out = {
        "plain": {name: score(plain, train, test, g, 50 if "reference" in name else 100) for name, g in evals.items()}
    }
    for label, ct in SEMANTICS.items():
        fit = fit_ct(train, "mlp", ct=ct, seed=args.seed, epochs=args.epochs)
        h = fit.history
        land = {
            k: [round(float(np.mean(h[k][:5])), 3), round(float(np.mean(h[k][-5:])), 3)]
            for k in (
                "mature_share",
                "search_steps",
                "box_share",
                "box_distance",
                "cf_l1",
                "nascent_moved",
                "div",
                "adv",
            )
        }
        out[label] = {
            "landing (first 5 / last 5 epochs)": land,
            **{
                name: score(fit.classifier, train, test, g, 50 if "reference" in name else 100)
                for name, g in evals.items()
            },
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

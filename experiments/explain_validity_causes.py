"""Why does DiCE at the registry defaults stop short of validity on real data? (issue 23)

``cfx.generate(DiCE(), clf, X, 1, constraints=train.schema.constraints(), K=3, max_steps=200)``
on the factuals of experiments/explain_validity.py (same model cache, seed 0), then one change
at a time: more steps, step size, no diversity / cost term, the start, the integer grid, and
each kind of constraint removed or kept alone. Validity is the search's own outcome
(converged: p(1) >= 0.5 at the returned, snapped point).

    python experiments/explain_validity_causes.py adult --models results/explain_validity
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import warnings

import jax
import numpy as np

import cfx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from explain_validity import model_for  # noqa: E402


def stalled(train, clf, X, cons) -> dict:
    """Where the registry-default search's unconverged members sit: how many are at a bound
    (or on the factual's side of a monotone feature) with the gradient of log p(1) pointing out
    of the feasible set, and the share of that gradient's L1 mass on blocked coordinates (those,
    plus immutable features)."""
    import jax.numpy as jnp

    res = cfx.generate(
        cfx.generators.make("dice").replace(num_counterfactuals=3),
        clf,
        X,
        1,
        key=jax.random.key(0),
        constraints=cons,
        max_steps=200,
    )
    bad = np.asarray(res.outcome) != 0
    z, x = np.asarray(res.counterfactuals)[bad], np.repeat(X[:, None], 3, 1)[bad]
    g = np.asarray(jax.vmap(jax.grad(lambda v: jax.nn.log_softmax(clf.raw_logits(v[None]))[0, 1]))(jnp.asarray(z)))
    s = train.schema
    lo, hi, mut = np.asarray(s.lower), np.asarray(s.upper), np.asarray(s.mutability)
    names = np.asarray(train.encoder.names)
    bound = ((z <= lo + 1e-4) & (g < 0)) | ((z >= hi - 1e-4) & (g > 0))
    side = ((mut == "increase") & (z <= x + 1e-4) & (g < 0)) | ((mut == "decrease") & (z >= x - 1e-4) & (g > 0))
    share = np.abs(g) / np.maximum(np.abs(g).sum(1, keepdims=True), 1e-30)
    blocked = bound | side | (mut == "none")[None]
    count = lambda a: {str(names[j]): int(a[:, j].sum()) for j in np.argsort(-a.sum(0))[:4] if a[:, j].sum()}  # noqa: E731
    return {
        "members": int(bad.sum()),
        "blocked_gradient_share": float((share * blocked).sum(1).mean()) if bad.any() else None,
        "at_a_bound_pushing_out": count(bound),
        "monotone_side_pushing_back": count(side),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("--factuals", type=int, default=100)
    ap.add_argument("--models", default="results/explain_validity")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    train, test, clf = model_for(args.name, 0, args.models)
    rejected = np.flatnonzero(np.asarray(clf.predict(test.X)) == 0)
    pick = np.sort(np.random.default_rng(0).choice(rejected, min(args.factuals, len(rejected)), replace=False))
    X = train.encoder.encode(test.subset(pick).to_frame())
    cons = train.schema.constraints()
    mut = list(cons.mutability)
    free = ["both" if m != "none" else "none" for m in mut]  # immutables kept, directions dropped
    D = cfx.generators.make("dice")
    runs = {
        "registry defaults, 200 steps": (D, 200, cons, {}),
        "1000 steps": (D, 1000, cons, {}),
        "5000 steps": (D, 5000, cons, {}),
        "diversity 0": (D.replace(diversity=0.0), 200, cons, {}),
        "cost 0": (D.replace(cost=0.0), 200, cons, {}),
        "learning rate 0.01, 1000 steps": (D.replace(learning_rate=0.01), 1000, cons, {}),
        "learning rate 0.2": (D.replace(learning_rate=0.2), 200, cons, {}),
        "identity start": (D.replace(start="identity"), 200, cons, {}),
        "no integer grid": (D, 200, train.schema.replace(kinds=None).constraints(), {}),
        "no constraints": (D, 200, None, {}),
        "all but bounds": (D, 200, dataclasses.replace(cons, lower=None, upper=None), {}),
        "all but directions": (D, 200, dataclasses.replace(cons, mutability=free), {}),
        "all but immutables": (
            D,
            200,
            dataclasses.replace(cons, mutability=["both" if m == "none" else m for m in mut]),
            {},
        ),
        "all but one-hot groups": (D, 200, dataclasses.replace(cons, categorical_groups=None), {}),
        "bounds only": (D, 200, cfx.Constraints(lower=cons.lower, upper=cons.upper), {}),
        "immutables only": (D, 200, cfx.Constraints(mutability=["none" if m == "none" else "both" for m in mut]), {}),
        "directions only": (D, 200, cfx.Constraints(mutability=[m if m != "none" else "both" for m in mut]), {}),
    }
    out = {"stalled": stalled(train, clf, X, cons)}
    print(json.dumps(out["stalled"]), flush=True)
    for label, (gen, steps, constraints, kw) in runs.items():
        res = cfx.generate(
            gen.replace(num_counterfactuals=3),
            clf,
            X,
            1,
            key=jax.random.key(0),
            constraints=constraints,
            max_steps=steps,
            **kw,
        )
        ok = np.asarray(res.outcome) == 0
        out[label] = {"validity": float(ok.mean()), "factuals_any_valid": float(ok.any(1).mean())}
        print(f"| {label} | {ok.mean():.3f} | {ok.any(1).mean():.3f} |", flush=True)
    print(json.dumps({"set": args.name, "factuals": len(X), "runs": out}))


if __name__ == "__main__":
    main()

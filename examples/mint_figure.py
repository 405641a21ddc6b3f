"""MINT vs a causally blind search on a known linear SCM: the numbers and the figure of
docs/generators.md ("Causal recourse (MINT)").

SCM: x0 = u0, x1 = 2·x0 + 0.5 + u1. Classifier: logit = x0 + 0.5·x1 − 1. Factual (0, 0.5) (u1 = 0).
Only x0 is actionable for MINT (x1 changes through x0); Generic (L1, no cost) moves x as if the
features were independent.

    PYTHONPATH=. python examples/mint_figure.py [--out docs/figures/mint_vs_wachter.png]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

import cfx
from cfx.causal import linear_scm
from cfx.generators import MINT, Generic

SCM = linear_scm([[], [0]], [[], [2.0]], [0.0, 0.5])
W, B = np.array([1.0, 0.5], np.float32), -1.0


def run():
    clf = cfx.Classifier(
        lambda p, x: x @ p["w"][:, None] + p["b"], {"w": jnp.asarray(W), "b": jnp.asarray([B])}, n_features=2
    )
    x = np.array([[0.0, 0.5]], np.float32)
    key = jax.random.key(0)
    plain = cfx.generate(
        Generic(cost=0.0, learning_rate=0.01), clf, x, target=1, key=key, max_steps=500, return_path=True
    )
    mint = cfx.generate(
        MINT(scm=SCM, actions=(0,), cost=0.0, learning_rate=0.01),
        clf,
        x,
        target=1,
        key=key,
        max_steps=500,
        return_path=True,
    )
    rows = {}
    for name, res in (("generic", plain), ("mint", mint)):
        cf = np.asarray(res.counterfactuals)[0, 0]
        u1 = float(np.asarray(SCM.abduct(cf[None]))[0, 1])
        delta = np.asarray(SCM.action(x, cf[None]))[0]
        rows[name] = {
            "point": cf,
            "l1_distance": float(np.abs(cf - x[0]).sum()),
            "p": float(clf.probs(cf[None])[0, 1]),
            "u1": u1,
            "action": delta,
            "path": np.asarray(res.path)[0, 0] if res.path is not None else None,
            "steps": int(np.asarray(res.steps)[0, 0]),
        }
    best = -(x[0] @ W + B) / (W[0] + 2 * W[1])
    return x[0], rows, float(best)


def figure(x, rows, best) -> Figure:
    fig = Figure(figsize=(5.2, 4.2), dpi=120)
    ax = fig.subplots()
    g = np.linspace(-0.5, 1.5, 50)
    ax.plot(g, 2 * g + 0.5, color="0.6", lw=1, ls="--", label="SCM: x1 = 2·x0 + 0.5 + u1 (u1 = 0)")
    ax.plot(g, (1 - g) / 0.5, color="k", lw=1, label="decision boundary")
    ax.scatter(*x, color="k", zorder=3, label="factual")
    for name, colour in (("generic", "tab:red"), ("mint", "tab:blue")):
        r = rows[name]
        label = (
            f"{'Generic (L1)' if name == 'generic' else 'MINT (act on x0)'}: L1 dist {r['l1_distance']:.2f}, "
            f"u1 {r['u1']:+.2f}"
        )
        ax.annotate("", xy=r["point"], xytext=x, arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.5})
        ax.scatter(*r["point"], color=colour, zorder=3, label=label)
    ax.set_xlim(-0.4, 1.2)
    ax.set_ylim(0.0, 2.2)
    ax.set_xlabel("x0 (actionable)")
    ax.set_ylabel("x1 (a child of x0)")
    ax.set_title(f"Causal recourse: optimal action δ0* = {best:.3f}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/figures/mint_vs_wachter.png")
    args = parser.parse_args()
    x, rows, best = run()
    for name, r in rows.items():
        print(
            f"{name:8s} x' = {np.round(r['point'], 4)}  L1 distance {r['l1_distance']:.4f}  p(y=1) {r['p']:.4f}  "
            f"u1(x') {r['u1']:+.4f} (factual 0)  action δ {np.round(r['action'], 4)}  steps {r['steps']}"
        )
    print(
        f"closed form: δ0* = {best:.4f}, x' = {np.round(np.asarray(SCM.intervene(x[None], jnp.array([best, 0.0])))[0], 4)}"
    )
    figure(x, rows, best).savefig(args.out)
    print("wrote", args.out)


if __name__ == "__main__":
    main()

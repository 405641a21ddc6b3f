"""A small reproduction in the spirit of "Spurious Sparks of AGI" (Altmeyer et al., ICML 2024):
a model trained on a synthetic task, probed for variables it was never given, beside the controls.

Circles (n = 2000, noise and factor as cfx.data.load's defaults), an MLP (32, 32, relu) trained
on half of it for 50 epochs; on the other half, ridge probes (5-fold CV, α chosen from
cfx.probing.ALPHAS by mean CV score) of each hidden layer for: the radius ‖x‖ and sin of the angle
(never given to the model) and the class label (given). Rows: the trained layer, a random
projection of the raw inputs to the same width, the same layer of an untrained network of the same
architecture, shuffled targets, the raw inputs. Mean ± sd over seeds (data, init, projection).

    python experiments/probing_controls.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse

import numpy as np

import cfx
import cfx.probing


def run(seed: int) -> dict:
    data = cfx.data.load("circles", n=2000, seed=seed)
    train, test = data.split(test_size=0.5, seed=seed)
    clf = cfx.models.fit(train, "mlp", widths=(32, 32), epochs=50, seed=seed)
    X = test.X
    variables = {
        "radius (never given)": (np.linalg.norm(X, axis=1), "regression"),
        "sin(angle) (never given)": (np.sin(np.arctan2(X[:, 1], X[:, 0])), "regression"),
        "class label (given)": (test.y, "classification"),
    }
    out = {"accuracy": cfx.models.accuracy(clf, test)}
    for name, (target, task) in variables.items():
        for layer in ("hidden_0", "hidden_1"):
            table = cfx.probing.probe(clf, X, target, layer=layer, task=task, seed=seed)
            out[(name, layer)] = table["score"].to_dict()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = ap.parse_args()
    runs = [run(s) for s in args.seeds]
    print("test accuracy:", " / ".join(f"{r['accuracy']:.3f}" for r in runs))
    rows = ["trained layer", "random projection", "untrained model", "shuffled targets", "raw inputs"]
    keys = [k for k in runs[0] if k != "accuracy"]
    print("| variable | layer | metric | " + " | ".join(rows) + " |")
    print("|---|---|---|" + "---|" * len(rows))
    for key in keys:
        metric = "accuracy" if "label" in key[0] else "R²"
        cells = []
        for row in rows:
            v = np.array([r[key][row] for r in runs])
            cells.append(f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f}")
        print(f"| {key[0]} | {key[1]} | {metric} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

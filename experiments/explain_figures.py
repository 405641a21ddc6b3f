"""The figures of docs/tabular.md: what cfx.explain's DiCE changes for four rejected Adult rows
(``cfx.plotting.plot_changes``) and generic search paths on Adult's PCA plane
(``cfx.plotting.mesh_pca`` / ``plot_pca``). Same model and factuals as
experiments/explain_validity.py (seed 0).

    python experiments/explain_figures.py --models results/explain_validity --out docs/figures
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import jax
import numpy as np

import cfx
import cfx.plotting as P

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from explain_validity import model_for  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="results/explain_validity")
    ap.add_argument("--out", default="docs/figures")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    train, test, clf = model_for("adult", 0, args.models)
    rejected = np.flatnonzero(np.asarray(clf.predict(test.X)) == 0)
    pick = np.sort(np.random.default_rng(0).choice(rejected, 100, replace=False))[:4]
    frame = cfx.explain(
        clf, test.subset(pick).to_frame(), data=train, target=1, generator="dice", num_counterfactuals=3
    )
    P.save_figure(
        P.plot_changes(frame, title="Adult, cfx.explain DiCE K = 3"), os.path.join(args.out, "adult_changes.png")
    )
    X, y = test.X[:2000], test.y[:2000]
    grid = P.mesh_pca(X)
    grid["probs"] = np.asarray(clf.probs(grid["inputs"]))
    res = cfx.generate(
        cfx.generators.make("generic"),
        clf,
        test.X[pick],
        1,
        key=jax.random.key(0),
        constraints=train.schema.constraints(),
        max_steps=300,
        return_path=True,
    )
    fig = P.plot_pca(
        grid,
        X,
        y,
        res.counterfactuals,
        paths=res.path,
        feature_names=train.encoder.names,
        title="Adult: generic search paths on the PCA plane",
    )
    P.save_figure(fig, os.path.join(args.out, "adult_pca.png"))


if __name__ == "__main__":
    main()

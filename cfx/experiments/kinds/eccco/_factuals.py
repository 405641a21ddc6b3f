"""The factuals of an ``eccco`` run (:func:`select_factuals`, re-exported by
:mod:`cfx.experiments.kinds.eccco.runner`): cfx's rule (test points predicted a non-target
class, each with a target) or the reference's random (factual class, target) pairs.
"""

from __future__ import annotations

import numpy as np

from cfx.experiments import runs

#: (factual class, target class) of the image figure.
FIGURE_DIGITS = (9, 7)


def _random_pairs(clf, pool, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """The reference's protocol: per factual a class f ~ U{0..C−1}, a target t ~ U(classes ≠ f),
    then a random pool row predicted f (with replacement; a class nothing is predicted as is redrawn)."""
    C = int(clf.n_classes)
    pred = np.asarray(clf.predict(pool.X))
    present = np.unique(pred)
    if len(present) == 0:
        raise ValueError(f"{pool.name}: no rows to draw factuals from")
    f = rng.choice(present, size=n)
    t = (f + 1 + rng.integers(0, C - 1, size=n)) % C
    rows = np.array([rng.choice(np.flatnonzero(pred == c)) for c in f])
    return pool.X[rows].astype(np.float32), t.astype(np.int32)


def select_factuals(
    clf, test, n: int, seed: int, train=None, pool: str = "test", targets: str = "cfx"
) -> tuple[np.ndarray, np.ndarray, int | None]:
    """(x (m, d), target (m,), figure row or None) by the rule of the module docstring
    (``pool="train"``, ``targets="random_pair"``: the reference's, :class:`FactualSpec`)."""
    rng = np.random.default_rng(seed)
    if targets == "random_pair":
        source = train if pool == "train" else test
        x, t = _random_pairs(clf, source, n, rng)
        src, dst = FIGURE_DIGITS
        nines = np.flatnonzero(source.y == src)
        if int(clf.n_classes) == 10 and source.n_features >= 64 and len(nines):  # the figure's 9 -> 7 first
            x, t = x.copy(), t.copy()
            x[0], t[0] = source.X[nines[0]], dst
            return x, t, 0
        return x, t, None
    if pool == "train":
        test, train = train, None
    C = int(clf.n_classes)
    X = np.concatenate([test.X] + ([train.X] if train is not None else []))
    y = np.concatenate([test.y] + ([train.y] if train is not None else []))
    candidates, targets = runs.factual_targets(np.asarray(clf.predict(X)), C, rng)
    in_test = rng.permutation(candidates[candidates < len(test)])
    chosen = np.concatenate([in_test, rng.permutation(candidates[candidates >= len(test)])])[:n]
    if len(chosen) == 0:
        raise ValueError(f"{test.name}: the model predicts no point as a non-target class, so there are no factuals")
    figure = None
    src, dst = FIGURE_DIGITS
    nines = np.flatnonzero(y[: len(test)] == src)  # the first test 9: the same image for every model
    if C == 10 and len(nines) and test.n_features >= 64:
        chosen = np.concatenate([nines[:1], chosen[chosen != nines[0]]])[:n]
        targets = targets.copy()
        targets[nines[0]] = dst
        figure = 0
    return X[chosen].astype(np.float32), targets[chosen], figure

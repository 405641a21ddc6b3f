"""T-CREx's rules, fitted host side: the tree nodes as boxes, their feasibility and accuracy, the metarule tree.

Steps (a)–(e) of :mod:`cfx.generators.tcrex`'s docstring, as :func:`fit_rules`; re-exported from there.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

_NONE, _INCREASE, _DECREASE = 3, 1, 2  # cfx.constraints' mutability codes


class RuleSet(NamedTuple):
    """The fitted rules of one target class (host arrays; m maximal-valid rules, k metarules).

    lower, upper (m, d); feasibility, accuracy (m,); candidates: how many distinct tree nodes
    were considered; n_valid: how many were valid; bounds: per feature the grid's bounds;
    meta_lower, meta_upper (k, d) and meta_rule (k,) the metarules (rule -1: no rule applies);
    tree: the metarule tree as arrays (feature, threshold, left, right, rule) over its nodes;
    cells: how many grid cells held data."""

    lower: np.ndarray
    upper: np.ndarray
    feasibility: np.ndarray
    accuracy: np.ndarray
    candidates: int
    n_valid: int
    bounds: tuple
    meta_lower: np.ndarray
    meta_upper: np.ndarray
    meta_rule: np.ndarray
    tree: dict
    cells: int


# ----------------------------------------------------------------------------- host side: rules


def _float32_at_most(t: np.ndarray) -> np.ndarray:
    """The largest float32 <= t, so x <= result ⇔ x <= t for float32 x (scikit-learn's float64 thresholds)."""
    t32 = np.asarray(t, np.float64).astype(np.float32)
    up = t32.astype(np.float64) > t
    t32[up] = np.nextafter(t32[up], np.float32(-np.inf))
    return t32


def node_boxes(tree, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Every node of a scikit-learn ``tree_`` as a box (lower (N, d), upper (N, d)), root first."""
    N = tree.node_count
    lower, upper = np.full((N, d), -np.inf, np.float32), np.full((N, d), np.inf, np.float32)
    thresholds = _float32_at_most(tree.threshold)
    for node in range(N):  # preorder numbering: a parent's box is final before its children's
        left, right = tree.children_left[node], tree.children_right[node]
        if left == -1:
            continue
        f, t = tree.feature[node], thresholds[node]
        lower[left], upper[left], lower[right], upper[right] = lower[node], upper[node], lower[node], upper[node]
        upper[left, f] = min(upper[node, f], t)
        lower[right, f] = max(lower[node, f], t)
    return lower, upper


def inside(X, lower, upper) -> np.ndarray:
    """(n, m) bool: row i lies in box j (lower < x <= upper); one pass per feature bounds memory to n·m."""
    X = np.asarray(X, np.float32)
    out = np.ones((X.shape[0], lower.shape[0]), bool)
    for f in range(X.shape[1]):
        col = X[:, f : f + 1]
        out &= (col > lower[None, :, f]) & (col <= upper[None, :, f])
    return out


def rule_stats(X, hit, lower, upper) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(feasibility, accuracy, count) (m,) of each box over rows X with hit = 1[ŷ = y⁺] (module docstring)."""
    member = inside(X, lower, upper)
    count = member.sum(0)
    feasibility = count / max(len(X), 1)
    accuracy = (member & np.asarray(hit, bool)[:, None]).sum(0) / np.maximum(count, 1)
    return feasibility, accuracy, count


def maximal(lower, upper, valid) -> np.ndarray:
    """(m,) bool: valid boxes contained in no other valid box (boxes distinct)."""
    m = lower.shape[0]
    contained = np.ones((m, m), bool)  # contained[i, j]: box i ⊆ box j
    for f in range(lower.shape[1]):
        contained &= (lower[None, :, f] <= lower[:, None, f]) & (upper[:, None, f] <= upper[None, :, f])
    np.fill_diagonal(contained, False)
    return valid & ~np.any(contained & valid[None, :], axis=1)


def rule_costs(P, lower, upper, feasibility, mutability=None):
    """(c, m) cost 2·changes − feasibility of moving each row of P into each rule (inf: a forbidden change)."""
    P = np.asarray(P, np.float32)
    changes = np.zeros((P.shape[0], lower.shape[0]), np.int32)
    forbidden = np.zeros(changes.shape, bool)
    for f in range(P.shape[1]):
        col = P[:, f : f + 1]
        below, above = col <= lower[None, :, f], col > upper[None, :, f]
        changes += below | above
        code = 0 if mutability is None else int(mutability[f])
        if code == _NONE:
            forbidden |= below | above
        elif code == _INCREASE:
            forbidden |= above
        elif code == _DECREASE:
            forbidden |= below
    return np.where(forbidden, np.inf, 2.0 * changes - feasibility[None, :])


def _cells(X, bounds) -> np.ndarray:
    """(n, d) grid cell index per feature: the number of bounds below x (cell k is (b_{k-1}, b_k])."""
    return np.stack([np.searchsorted(b, X[:, f], side="left") for f, b in enumerate(bounds)], axis=1)


def _finite(b: np.ndarray) -> np.ndarray:
    return b[np.isfinite(b)].astype(np.float32)


def _meta_tree(cells, labels, bounds, seed: int) -> dict:
    """The metarule tree: CART grown to purity on cell indices, thresholds mapped to the grid's bounds."""
    from sklearn.tree import DecisionTreeClassifier

    if len(np.unique(labels)) == 1:
        return dict(
            feature=np.zeros(1, np.int32),
            threshold=np.full(1, np.inf, np.float32),
            left=np.zeros(1, np.int32),
            right=np.zeros(1, np.int32),
            rule=np.asarray(labels[:1], np.int32),
        )
    est = DecisionTreeClassifier(random_state=seed).fit(cells.astype(np.float64), labels)
    t = est.tree_
    leaf = t.children_left == -1
    nodes = np.arange(t.node_count)
    feature = np.where(leaf, 0, t.feature).astype(np.int32)
    # index <= t (t half-integer) ⇔ index <= floor(t) ⇔ x <= bounds[floor(t)]
    threshold = np.array(
        [np.inf if lf else bounds[f][int(np.floor(th))] for lf, f, th in zip(leaf, t.feature, t.threshold)], np.float32
    )
    rule = est.classes_[np.argmax(t.value[:, 0, :], axis=1)].astype(np.int32)
    return dict(
        feature=feature,
        threshold=threshold,
        left=np.where(leaf, nodes, t.children_left).astype(np.int32),
        right=np.where(leaf, nodes, t.children_right).astype(np.int32),
        rule=rule,
    )


def _tree_leaves(tree: dict, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The metarules: every leaf of the metarule tree as a box and its rule."""
    out, stack = [], [(0, np.full(d, -np.inf, np.float32), np.full(d, np.inf, np.float32))]
    while stack:
        node, lo, hi = stack.pop()
        left, right = tree["left"][node], tree["right"][node]
        if left == node:
            out.append((lo, hi, tree["rule"][node]))
            continue
        f, t = tree["feature"][node], tree["threshold"][node]
        hi_left, lo_right = hi.copy(), lo.copy()
        hi_left[f], lo_right[f] = min(hi[f], t), max(lo[f], t)
        stack += [(right, lo_right, hi), (left, lo, hi_left)]
    return (np.stack([o[0] for o in out]), np.stack([o[1] for o in out]), np.array([o[2] for o in out], np.int32))


def fit_rules(
    X,
    hit,
    *,
    rho: float,
    tau: float,
    mutability=None,
    forest: bool = False,
    n_trees: int = 10,
    max_depth: int | None = None,
    seed: int = 0,
    candidates: str = "nodes",
) -> RuleSet:
    """Steps (a)–(e) of the module docstring for one target: rows X (n, d), hit (n,) = 1[ŷ = y⁺].
    ``candidates="leaves"``: only the surrogate's leaves are candidate rules (not its inner nodes)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier

    X = np.asarray(X, np.float32)
    hit = np.asarray(hit, bool)
    n, d = X.shape
    leaf = max(1, int(np.ceil(rho * n)))
    if forest:
        est = RandomForestClassifier(
            n_estimators=n_trees, min_samples_leaf=leaf, max_depth=max_depth, random_state=seed
        ).fit(X, hit)
        trees = [e.tree_ for e in est.estimators_]
    else:
        trees = [
            DecisionTreeClassifier(min_samples_leaf=leaf, max_depth=max_depth, random_state=seed).fit(X, hit).tree_
        ]
    boxes = (
        [node_boxes(t, d) for t in trees]
        if hit.any() and not hit.all()
        else [(np.full((1, d), -np.inf, np.float32), np.full((1, d), np.inf, np.float32))]
    )
    if candidates == "leaves" and hit.any() and not hit.all():
        boxes = [(lo[t.children_left == -1], hi[t.children_left == -1]) for (lo, hi), t in zip(boxes, trees)]
    both = np.unique(np.concatenate([np.concatenate(b, axis=1) for b in boxes]), axis=0)
    lower, upper = both[:, :d], both[:, d:]
    feasibility, accuracy, count = rule_stats(X, hit, lower, upper)
    valid = (feasibility >= rho) & (accuracy >= tau) & (count > 0)
    keep = maximal(lower, upper, valid)
    lower, upper, feasibility, accuracy = lower[keep], upper[keep], feasibility[keep], accuracy[keep]
    bounds = tuple(_finite(np.unique(np.concatenate([lower[:, f], upper[:, f]]))) for f in range(d))
    cells, first = np.unique(_cells(X, bounds), axis=0, return_index=True)
    if len(lower):
        cost = rule_costs(X[first], lower, upper, feasibility, mutability)
        labels = np.where(np.isfinite(cost.min(1)), np.argmin(cost, 1), -1)
    else:
        labels = np.full(len(cells), -1)
    tree = _meta_tree(cells, labels, bounds, seed)
    meta_lower, meta_upper, meta_rule = _tree_leaves(tree, d)
    return RuleSet(
        lower,
        upper,
        feasibility,
        accuracy,
        int(len(both)),
        int(valid.sum()),
        bounds,
        meta_lower,
        meta_upper,
        meta_rule,
        tree,
        int(len(cells)),
    )

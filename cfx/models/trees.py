"""Tree ensembles from scikit-learn as exact JAX classifiers, with the leaves' boxes that
:class:`cfx.generators.FeatureTweak` searches.

A fitted ``DecisionTreeClassifier``, ``RandomForestClassifier``, ``ExtraTreesClassifier`` or
binary ``GradientBoostingClassifier`` becomes arrays over T trees padded to N nodes
(``feature``, ``threshold``, ``left``, ``right``, ``value``); prediction walks every tree for
``depth`` steps at once (node ← left if x[feature] <= threshold else right; a leaf points to
itself). scikit-learn compares float32 inputs with float64 thresholds, so each threshold is
stored as the largest float32 <= it: x <= t32 ⇔ x <= t for every float32 x (exact).

* forests: p = mean over trees of the leaf's class fractions; logits = log max(p, 1e-7).
* gradient boosting (binary): f = bias + learning_rate · Σ_t leaf value; one logit column, p = σ(f).
* XGBoost (``XGBClassifier``, ``binary:logistic``, numerical splits): read from the booster's
  JSON; a node sends x left when x < s (float32), i.e. x <= the float32 just below s (exact);
  f = bias + Σ_t leaf weight (the weights include η; bias: the model's margin at one row minus
  the trees' sum there, so ``base_score`` is honoured whatever its form).

Piecewise constant, so ``differentiable = False``: only gradient-free generators apply.

``params["paths"]`` lists every leaf as a box: ``lower < x <= upper`` per feature (±inf where
the path does not test the feature), with its ``tree`` and ``label`` (forest: the leaf's
majority class; boosting: 1 where the leaf's value pushes towards class 1, else 0).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cfx import _deprecated
from cfx.classifier import Classifier

ESTIMATOR_CLASSES = (
    "DecisionTreeClassifier",
    "RandomForestClassifier",
    "ExtraTreesClassifier",
    "GradientBoostingClassifier",
    "XGBClassifier",
)
SUPPORTED = ESTIMATOR_CLASSES[:3] + ("GradientBoostingClassifier (binary)", "XGBClassifier (binary:logistic, gbtree)")
EPS = 1e-7


@dataclasses.dataclass(frozen=True)
class TreeEnsembleApply:
    """``apply_fn`` of a tree ensemble (hashable; ``depth`` and ``kind`` are static)."""

    kind: str  # "forest" or "boosting"
    depth: int
    differentiable = False

    def leaves(self, params: Any, x: jax.Array) -> jax.Array:
        """(n, T) the leaf each tree sends each row of x (n, d) to."""
        p = params["trees"]
        T = p["feature"].shape[0]
        trees = jnp.arange(T)

        def descend(_, node):
            value = jnp.take_along_axis(x, p["feature"][trees, node], axis=1)
            return jnp.where(value <= p["threshold"][trees, node], p["left"][trees, node], p["right"][trees, node])

        return jax.lax.fori_loop(0, self.depth, descend, jnp.zeros((x.shape[0], T), jnp.int32))

    def leaf_values(self, params: Any, x: jax.Array) -> jax.Array:
        """(n, T, V): each tree's leaf value (forest: class fractions; boosting: V = 1)."""
        v = params["trees"]["value"]
        return v[jnp.arange(v.shape[0]), self.leaves(params, x)]

    def __call__(self, params: Any, x: jax.Array) -> jax.Array:
        values = self.leaf_values(params, x)
        if self.kind == "boosting":
            return params["bias"] + params["scale"] * jnp.sum(values, axis=1)  # (n, 1): a binary logit
        return jnp.log(jnp.maximum(jnp.mean(values, axis=1), EPS))

    def votes(self, params: Any, x: jax.Array) -> jax.Array:
        """(n, T) the class each tree votes for at x (boosting: 1 where its value is > 0)."""
        values = self.leaf_values(params, x)
        if self.kind == "boosting":
            return (values[..., 0] > 0).astype(jnp.int32)
        return jnp.argmax(values, axis=-1).astype(jnp.int32)


def is_tree_ensemble(classifier) -> bool:
    """Whether ``classifier`` wraps a fitted tree ensemble (``from_sklearn`` of a forest or boosting model)."""
    return isinstance(getattr(classifier, "apply_fn", None), TreeEnsembleApply)


def _float32_at_most(t: np.ndarray) -> np.ndarray:
    """The largest float32 <= t (elementwise), so x <= result ⇔ x <= t for float32 x."""
    t32 = t.astype(np.float32)
    up = t32.astype(np.float64) > t
    t32[up] = np.nextafter(t32[up], np.float32(-np.inf))
    return t32


def _tree_arrays(tree, n_nodes: int, n_values: int, normalise: bool) -> dict:
    """One sklearn ``tree_`` as padded arrays; leaves (children -1) point to themselves."""
    count = tree.node_count
    nodes = np.arange(n_nodes)
    leaf = np.ones(n_nodes, bool)
    leaf[:count] = tree.children_left == -1
    left = np.where(leaf, nodes, np.pad(tree.children_left, (0, n_nodes - count)))
    right = np.where(leaf, nodes, np.pad(tree.children_right, (0, n_nodes - count)))
    feature = np.where(leaf, 0, np.pad(tree.feature, (0, n_nodes - count)))
    threshold = np.where(
        leaf, np.inf, np.pad(_float32_at_most(np.asarray(tree.threshold, np.float64)), (0, n_nodes - count))
    )
    value = np.zeros((n_nodes, n_values))
    value[:count] = tree.value[:, 0, :n_values]
    if normalise:
        value = value / np.maximum(value.sum(-1, keepdims=True), 1e-300)
    return dict(
        feature=feature.astype(np.int32),
        threshold=threshold.astype(np.float32),
        left=left.astype(np.int32),
        right=right.astype(np.int32),
        value=value.astype(np.float32),
    ), leaf[:count]


def _paths(tree, d: int, label_of) -> list:
    """Every leaf of one tree as (lower (d,), upper (d,), label): the box lower < x <= upper."""
    out, stack = [], [(0, np.full(d, -np.inf, np.float32), np.full(d, np.inf, np.float32))]
    thresholds = _float32_at_most(np.asarray(tree.threshold, np.float64))
    while stack:
        node, lo, hi = stack.pop()
        left, right = tree.children_left[node], tree.children_right[node]
        if left == -1:
            out.append((lo, hi, label_of(tree.value[node, 0])))
            continue
        f, t = tree.feature[node], thresholds[node]
        hi_left, lo_right = hi.copy(), lo.copy()
        hi_left[f] = min(hi[f], t)
        lo_right[f] = max(lo[f], t)
        stack += [(right, lo_right, hi), (left, lo, hi_left)]
    return out


class _Tree:
    """The parts of scikit-learn's ``tree_`` that :func:`_tree_arrays` and :func:`_paths` read,
    for trees from elsewhere (XGBoost)."""

    def __init__(self, left, right, feature, threshold, leaf_value):
        self.children_left, self.children_right = np.asarray(left, np.int64), np.asarray(right, np.int64)
        self.feature, self.threshold = np.asarray(feature, np.int64), np.asarray(threshold, np.float64)
        self.node_count = len(self.children_left)
        self.value = np.asarray(leaf_value, np.float64).reshape(-1, 1, 1)
        depth, stack = 0, [(0, 0)]
        while stack:
            node, level = stack.pop()
            depth = max(depth, level)
            if self.children_left[node] != -1:
                stack += [(self.children_left[node], level + 1), (self.children_right[node], level + 1)]
        self.max_depth = depth


def _xgboost_trees(est) -> list:
    """The trees of a fitted binary ``XGBClassifier`` (its booster's JSON) as :class:`_Tree`."""
    learner = json.loads(bytes(est.get_booster().save_raw("json")))["learner"]
    objective, booster = learner["objective"]["name"], learner["gradient_booster"]
    if objective != "binary:logistic" or booster.get("name") != "gbtree":
        raise TypeError(
            f"from_sklearn: XGBClassifier with objective {objective!r} and booster {booster.get('name')!r}"
            " is not supported (binary:logistic with gbtree only); use cfx.models.from_predict_proba("
            "model.predict_proba, n_features, n_classes) as a black box"
        )
    out = []
    for t in booster["model"]["trees"]:
        if any(int(k) != 0 for k in t.get("split_type", [])):
            raise TypeError(
                "from_sklearn: an XGBClassifier with categorical splits is not supported; one-hot encode "
                "(cfx.data does) or use cfx.models.from_predict_proba"
            )
        left = np.asarray(t["left_children"])
        cond = np.asarray(t["split_conditions"], np.float64).astype(np.float32)  # leaves: the leaf weight
        below = np.nextafter(cond, np.float32(-np.inf)).astype(np.float64)  # x < s ⇔ x <= below (float32 x)
        leaf = left == -1
        out.append(
            _Tree(
                left,
                t["right_children"],
                np.where(leaf, 0, t["split_indices"]),
                np.where(leaf, -2.0, below),
                np.where(leaf, cond, 0.0),
            )
        )
    return out


def from_sklearn_trees(est) -> Classifier:
    """An exact JAX :class:`cfx.Classifier` of a fitted scikit-learn tree ensemble or a binary
    ``XGBClassifier`` (module docstring)."""
    kind = type(est).__name__
    d, n_classes = int(est.n_features_in_), len(est.classes_)
    scale = 1.0
    if kind == "XGBClassifier":
        if n_classes != 2:
            raise TypeError(
                f"from_sklearn: XGBClassifier with {n_classes} classes is not supported (binary only); "
                "use cfx.models.from_predict_proba(model.predict_proba, n_features, n_classes)"
            )
        sk_trees = _xgboost_trees(est)
        label_of, n_values, normalise, apply_kind = (lambda v: int(v[0] > 0)), 1, False, "boosting"
    elif kind == "GradientBoostingClassifier":
        if n_classes != 2:
            raise TypeError(
                f"from_sklearn: GradientBoostingClassifier with {n_classes} classes is not supported "
                "(binary only); use cfx.models.from_predict_proba(est.predict_proba, n_features, "
                "n_classes) as a black box"
            )
        sk_trees = [e.tree_ for e in est.estimators_[:, 0]]
        label_of, n_values, normalise, apply_kind = (lambda v: int(v[0] > 0)), 1, False, "boosting"
        scale = float(est.learning_rate)
    else:
        sk_trees = [est.tree_] if kind == "DecisionTreeClassifier" else [e.tree_ for e in est.estimators_]
        label_of, n_values, normalise, apply_kind = (lambda v: int(np.argmax(v))), n_classes, True, "forest"
    n_nodes = max(t.node_count for t in sk_trees)
    arrays = [_tree_arrays(t, n_nodes, n_values, normalise)[0] for t in sk_trees]
    params = {"trees": {k: jnp.asarray(np.stack([a[k] for a in arrays])) for k in arrays[0]}}
    paths = [(lo, hi, lab, i) for i, t in enumerate(sk_trees) for lo, hi, lab in _paths(t, d, label_of)]
    params["paths"] = {
        "lower": jnp.asarray(np.stack([p[0] for p in paths])),
        "upper": jnp.asarray(np.stack([p[1] for p in paths])),
        "label": jnp.asarray(np.array([p[2] for p in paths], np.int32)),
        "tree": jnp.asarray(np.array([p[3] for p in paths], np.int32)),
    }
    apply = TreeEnsembleApply(apply_kind, int(max(t.max_depth for t in sk_trees)))
    if apply_kind == "boosting":
        # the constant term: the model's own margin at one row minus the trees' scaled sum there
        x0 = np.zeros((1, d), np.float32)
        if kind == "XGBClassifier":
            params["bias"], params["scale"] = jnp.float32(0.0), jnp.float32(scale)
            trees_sum = float(apply(params, jnp.asarray(x0))[0, 0])
            params["bias"] = jnp.float32(float(np.ravel(est.predict(x0, output_margin=True))[0]) - trees_sum)
        else:
            trees_sum = sum(float(e.predict(x0)[0]) for e in est.estimators_[:, 0])
            params["bias"] = jnp.float32(float(est.decision_function(x0)[0]) - scale * trees_sum)
            params["scale"] = jnp.float32(scale)
    return Classifier(apply, params, n_features=d, n_classes=n_classes)


__all__ = ["TreeEnsembleApply", "from_sklearn_trees", "is_tree_ensemble", "SUPPORTED", "ESTIMATOR_CLASSES"]

# renamed in cfx 0.2 ("kinds" are experiment kinds; these are estimator class names)
__getattr__ = _deprecated.module_aliases("cfx.models.trees", {"KINDS": ("cfx.models.trees", "ESTIMATOR_CLASSES")})

"""T-CREx (Bewley et al., ICML 2024, "Counterfactual Metarules for Local and Global Recourse"):
counterfactual rules and the metarules that say where each is optimal.

A rule R is a box ``lower < x <= upper`` (±inf where it does not test a feature). Over data X
(n rows) and labels ŷ = f(X) of the model, for a target class y⁺:

    feasibility ρ(R) = |{i: x_i ∈ R}| / n,        accuracy τ(R) = |{i: x_i ∈ R, ŷ_i = y⁺}| / |{i: x_i ∈ R}|.

Fitting (host side, once per model, :func:`fit_rules`), per target class:

  (a) a CART surrogate on (X, 1[ŷ = y⁺]) with at least ⌈ρ·n⌉ rows per leaf; every node of the
      tree (root included) is a candidate rule (a forest: every node of every tree);
  (b) the valid rules are those with feasibility >= ρ and accuracy >= τ; the maximal-valid ones
      are the valid rules contained in no other valid rule;
  (c) their bounds induce a grid (per feature the sorted set of finite bounds); every grid
      cell that holds a data row gets that row as its prototype (all points of a cell are
      inside or outside each rule on each feature alike, so one prototype stands for the cell);
  (d) each prototype's optimal rule minimises ``cost(x, R) = 2·changes(x, R) − ρ(R)``: the number
      of features x must change to enter R, ties to the more feasible rule (rules that need a
      change the mutability forbids — an immutable feature, an increase-only one lowered — are
      never chosen);
  (e) a second CART, grown to purity on (cell, optimal rule) with thresholds only at the grid's
      bounds (fitted on cell indices, whose half-integer splits are exactly the bounds), is the
      metarule tree: each leaf a box of the input space and the rule that is optimal there.

The local explanation of a factual x is its metarule's rule (``assign="metarule"``, the
paper's lookup) or the rule of least cost for x itself (``assign="optimal"``; equal wherever x
lies in a cell that held data); the counterfactual point moves only the features outside the
rule, to ``lower + δ`` or ``upper − δ`` with δ = min(margin·sd_j, width/2), then the constraints'
projection (one-hot groups switched to the level the rule needs). K > 1: the K cheapest rules.

Vectorised: rule membership, feasibility, accuracy, containment and the prototypes' costs are
array expressions over (rows × rules) (a loop over the d features only, to bound memory); the
search's step (costs of every rule for every factual, the metarule-tree walk, the points) is
one jitted expression over factuals. Not vectorised: growing the two CART trees (scikit-learn)
and reading each tree's nodes into boxes (a Python loop over the nodes, host side, at fit).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cfx._validate import as_real
from cfx.generators.base import Generator, check_positive, fitted, generator_class, numpy_rng, static
from cfx.generators.feature_tweak import _switch_levels
from cfx.generators._tcrex_rules import (
    _DECREASE,
    _INCREASE,
    _NONE,
    RuleSet,
    _tree_leaves,  # noqa: F401  (cfx.global_rules reads it from here)
    fit_rules,
    inside,
    maximal,
    node_boxes,
    rule_costs,
    rule_stats,
)

ASSIGN = ("metarule", "optimal")
POINTS = ("edge", "data")
CANDIDATES = ("nodes", "leaves")  # every node of the surrogate (CE.jl) or its leaves only


# ----------------------------------------------------------------------------- the generator


def _pad(arrays, size, fill, axis=0):
    return np.stack(
        [np.concatenate([a, np.full((size - a.shape[axis],) + a.shape[1:], fill, a.dtype)]) for a in arrays]
    )


def walk(tree: dict, x: jax.Array, depth: int) -> jax.Array:
    """(n,) the metarule tree's rule for rows x (n, d); tree arrays (n, N) (each row's target class's tree)."""
    rows = jnp.arange(x.shape[0])

    def descend(_, node):
        value = x[rows, tree["feature"][rows, node]]
        return jnp.where(value <= tree["threshold"][rows, node], tree["left"][rows, node], tree["right"][rows, node])

    node = jax.lax.fori_loop(0, depth, descend, jnp.zeros(x.shape[0], jnp.int32))
    return tree["rule"][rows, node]


def costs(x, lower, upper, valid, feasibility, mutability, skip_inside: bool = False):
    """(n, m) cost 2·changes − ρ(R) of each factual x (n, d) for its target's rules (n, m, d) (inf: not
    allowed; ``skip_inside``: also a rule x already lies in, which cannot change x's prediction)."""
    xe = x[:, None, :]
    below, above = xe <= lower, xe > upper
    changes = jnp.sum(below | above, axis=-1)
    forbidden = jnp.any(
        ((mutability == _NONE) & (below | above))
        | ((mutability == _INCREASE) & above)
        | ((mutability == _DECREASE) & below),
        axis=-1,
    )
    if skip_inside:
        forbidden = forbidden | (changes == 0)
    return jnp.where(valid & ~forbidden, 2.0 * changes - feasibility, jnp.inf)


def points(x, lower, upper, margin):
    """(n, K, d) x moved into each chosen rule (n, K, d): features outside go to lower + δ / upper − δ."""
    delta = jnp.minimum(margin, (upper - lower) / 2)
    xe = x[:, None, :]
    return jnp.where(xe > upper, upper - delta, jnp.where(xe <= lower, lower + delta, xe))


def data_points(x, target, lower, upper, bank, bank_label, scale):
    """(n, K, d) x with its features outside each rule copied from the bank row inside the rule,
    labelled ``target``, nearest on those features (Σ |x_j − b_j| / sd_j); the edge point when none."""

    def one(args):
        x_f, t_f, lo, hi = args  # (d,), (), (K, d), (K, d)
        out = (x_f <= lo) | (x_f > hi)  # (K, d) the features to change
        member = jnp.all((bank[None] > lo[:, None]) & (bank[None] <= hi[:, None]), -1) & (bank_label == t_f)
        dist = jnp.sum(jnp.where(out[:, None], jnp.abs(bank[None] - x_f) / scale, 0.0), -1)  # (K, N)
        best = jnp.argmin(jnp.where(member, dist, jnp.inf), axis=1)
        found = jnp.any(member, axis=1)[:, None]
        return jnp.where(out & found, bank[best], x_f), found[:, 0]

    return jax.lax.map(one, (x, target, lower, upper), batch_size=min(64, x.shape[0]))


@generator_class
class TCREx(Generator):
    """T-CREx's local explanations (module docstring): each factual moves into the rule its
    metarule assigns (``assign="metarule"``) or its cheapest rule (``"optimal"``); K > 1 gives
    the K cheapest rules (the assigned one first). One step, no gradient; rows with no allowed
    rule keep x. ``fit`` grows the rules for every class as target, from the classifier's
    labels on the training data (classifier None: the data's own labels).

    Hyperparameters: ``rho`` ρ (feasibility threshold, the surrogate's minimum leaf share;
    0.02 as in CounterfactualExplanations.jl's worked example), ``tau`` τ (accuracy threshold,
    0.9), ``margin`` (δ in units of each feature's sd: how far inside a rule's bound the point
    goes), static ``assign``, ``candidates`` (``"nodes"``: every node of the surrogate, as
    CE.jl; ``"leaves"``: its leaves only), ``forest`` (a random forest of ``n_trees`` as surrogate) and
    ``max_depth``. The fitted rules are leaves; their shapes depend on the data (a refit may
    recompile).
    """

    name = "tcrex"
    description = "Bewley et al. 2024 (T-CREx): global counterfactual rules and metarules from tree surrogates"
    uses_gradient = False

    yloss: object = static(None)
    rho: float = 0.02
    tau: float = 0.9
    margin: float = 0.05
    assign: str = static("metarule")
    candidates: str = static("nodes")
    forest: bool = static(False)
    n_trees: int = static(10)
    max_depth: Any = static(None)
    point: str = static("edge")
    bank_size: int = static(2000)
    depth: int = static(1)
    rule_lower: Any = fitted()
    rule_upper: Any = fitted()
    rule_valid: Any = fitted()
    rule_feasibility: Any = fitted()
    rule_accuracy: Any = fitted()
    meta: Any = fitted()
    feature_scale: Any = fitted()
    bank: Any = fitted()
    bank_label: Any = fitted()

    def fit(self, classifier, data, *, key: jax.Array) -> "TCREx":
        self.check_options()
        X = np.asarray(getattr(data, "X", data), np.float32)
        if X.ndim != 2 or len(X) < 2:
            raise ValueError(f"TCREx.fit: data must have X of shape (n, d) with n >= 2; got {X.shape}")
        if classifier is not None:
            labels = np.asarray(classifier.predict(X))
            n_classes = int(classifier.n_classes)
        else:
            labels = np.asarray(getattr(data, "y", np.zeros(len(X))), np.int64)
            n_classes = max(int(labels.max()) + 1, 2)
        schema = getattr(data, "schema", None)
        mutability = None
        if schema is not None:
            mutability = np.array([("both", "increase", "decrease", "none").index(m) for m in schema.mutability])
        seed = int(numpy_rng(key).integers(2**31 - 1))
        sets = [
            fit_rules(
                X,
                labels == c,
                rho=float(self.rho),
                tau=float(self.tau),
                mutability=mutability,
                forest=self.forest,
                n_trees=self.n_trees,
                max_depth=self.max_depth,
                seed=seed,
                candidates=self.candidates,
            )
            for c in range(n_classes)
        ]
        keep = numpy_rng(key).permutation(len(X))[: self.bank_size]
        return self.with_rules(sets, X).replace(
            bank=jnp.asarray(X[keep]), bank_label=jnp.asarray(labels[keep], jnp.int32)
        )

    def with_rules(self, sets: list[RuleSet], X) -> "TCREx":
        """A copy holding fitted rule sets (one per class) as padded leaves."""
        d = np.shape(X)[1]
        m = max(1, max(len(s.lower) for s in sets))
        N = max(len(s.tree["rule"]) for s in sets)
        pad_box = lambda a, v: _pad([x.reshape(-1, d) for x in a], m, np.float32(v))  # noqa: E731
        meta = {
            k: _pad([s.tree[k] for s in sets], N, s_fill)
            for k, s_fill in (
                ("feature", np.int32(0)),
                ("threshold", np.float32(np.inf)),
                ("left", np.int32(0)),
                ("right", np.int32(0)),
                ("rule", np.int32(-1)),
            )
        }
        for s_i, s in enumerate(sets):  # padded nodes point to themselves (never reached)
            n_real = len(s.tree["rule"])
            meta["left"][s_i, n_real:] = meta["right"][s_i, n_real:] = np.arange(n_real, N)
        scale = np.asarray(X, np.float32).std(0)
        return self.replace(
            rule_lower=jnp.asarray(pad_box([s.lower for s in sets], np.inf)),
            rule_upper=jnp.asarray(pad_box([s.upper for s in sets], -np.inf)),
            rule_valid=jnp.asarray(_pad([np.ones(len(s.lower), bool) for s in sets], m, False)),
            rule_feasibility=jnp.asarray(_pad([s.feasibility.astype(np.float32) for s in sets], m, np.float32(0))),
            rule_accuracy=jnp.asarray(_pad([s.accuracy.astype(np.float32) for s in sets], m, np.float32(0))),
            meta={k: jnp.asarray(v) for k, v in meta.items()},
            feature_scale=jnp.asarray(np.where(scale > 0, scale, 1.0)),
            depth=int(max(_depth(s.tree) for s in sets)),
        )

    def check_options(self) -> None:
        """ρ and τ must be numbers in (0, 1] (raises ValueError naming the field)."""
        for label, v, lo, hi in (("rho", self.rho, 0.0, 1.0), ("tau", self.tau, 0.0, 1.0)):
            arr = as_real(f"TCREx.{label}", v)
            if not (arr.shape == () and lo < float(arr) <= hi):
                raise ValueError(f"TCREx.{label} must be a number in (0, 1]; got {v!r}")
        if self.assign not in ASSIGN:
            raise ValueError(f"TCREx.assign must be one of {ASSIGN}; got {self.assign!r}")
        if self.candidates not in CANDIDATES:
            raise ValueError(f"TCREx.candidates must be one of {CANDIDATES}; got {self.candidates!r}")
        if self.point not in POINTS:
            raise ValueError(f"TCREx.point must be one of {POINTS}; got {self.point!r}")
        if isinstance(self.bank_size, bool) or not isinstance(self.bank_size, int) or self.bank_size < 1:
            raise ValueError(f"TCREx.bank_size must be an int >= 1; got {self.bank_size!r}")
        if isinstance(self.n_trees, bool) or not isinstance(self.n_trees, int) or self.n_trees < 1:
            raise ValueError(f"TCREx.n_trees must be an int >= 1; got {self.n_trees!r}")
        if self.max_depth is not None and (not isinstance(self.max_depth, int) or self.max_depth < 1):
            raise ValueError(f"TCREx.max_depth must be None or an int >= 1; got {self.max_depth!r}")

    def validate(self, num_counterfactuals, n_features, n_classes):
        super().validate(num_counterfactuals, n_features, n_classes)
        self.check_options()
        check_positive("TCREx.margin", self.margin)
        if self.rule_lower is None:
            raise ValueError(
                "TCREx has no rules: fit it first (TCREx().fit(classifier, train, key=key) or "
                "cfx.generators.make('tcrex', data=train, classifier=clf))"
            )
        self._check_width("rule_lower", self.rule_lower, n_features, "fit it")
        if np.shape(self.rule_lower)[0] < n_classes:
            raise ValueError(
                f"TCREx holds rules for {np.shape(self.rule_lower)[0]} classes; the classifier has "
                f"{n_classes} (refit it with this classifier)"
            )

    def choose(self, x, target, mutability, K: int, skip_inside: bool = True):
        """(n, K) the chosen rules' indices and (n, K) whether each is allowed (finite cost). A factual
        already inside a rule (its own prediction not the target) gets another one (``skip_inside``)."""
        x, target, mutability = jnp.asarray(x), jnp.asarray(target), jnp.asarray(mutability)
        lower, upper = self.rule_lower[target], self.rule_upper[target]
        cost = costs(x, lower, upper, self.rule_valid[target], self.rule_feasibility[target], mutability, skip_inside)
        if self.assign == "metarule":
            meta = {k: v[target] for k, v in self.meta.items()}
            first = walk(meta, x, self.depth)
            ok = (first >= 0) & jnp.isfinite(jnp.take_along_axis(cost, jnp.maximum(first, 0)[:, None], 1)[:, 0])
            rank = jnp.where(ok[:, None] & (jnp.arange(cost.shape[1]) == first[:, None]), -jnp.inf, cost)
        else:
            rank = cost
        k = min(K, cost.shape[1])
        order = jnp.argsort(rank, axis=1)[:, :k]
        order = jnp.concatenate([order, jnp.repeat(order[:, :1], K - k, axis=1)], axis=1)
        return order, jnp.isfinite(jnp.take_along_axis(cost, order, 1))

    def init_update(self, z, ctx):
        return jnp.zeros(z.shape[:2], bool)  # whether the one step has been taken

    def gave_up(self, state):
        return state

    def update(self, grad, state, z, ctx):
        n, K, d = z.shape
        rules, allowed = self.choose(ctx.x, ctx.target, ctx.constraints.mutability, K)
        lower, upper = self.rule_lower[ctx.target[:, None], rules], self.rule_upper[ctx.target[:, None], rules]
        cand = points(ctx.x, lower, upper, self.margin * self.feature_scale)
        if self.point == "data":
            moved, found = data_points(ctx.x, ctx.target, lower, upper, self.bank, self.bank_label, self.feature_scale)
            cand = jnp.where(found[..., None], moved, cand)
        if ctx.constraints.categorical_groups:
            cand = jax.vmap(lambda c, x, lo, hi: _switch_levels(c, x, {"lower": lo, "upper": hi}, ctx.constraints))(
                cand, ctx.x, lower, upper
            )
        cand = ctx.constraints.project(cand, ctx.x[:, None, :], one_hot=True)
        return jnp.where(allowed[..., None], cand, ctx.x[:, None, :]), jnp.ones_like(state)


def _depth(tree: dict) -> int:
    """Depth of a tree in arrays (the longest root-to-leaf path)."""
    depth, frontier = 0, [0]
    while True:
        nxt = [c for node in frontier for c in (tree["left"][node], tree["right"][node]) if c != node]
        if not nxt:
            return max(depth, 1)
        depth, frontier = depth + 1, nxt


__all__ = [
    "TCREx",
    "RuleSet",
    "fit_rules",
    "node_boxes",
    "inside",
    "rule_stats",
    "maximal",
    "rule_costs",
    "costs",
    "points",
    "walk",
    "ASSIGN",
]

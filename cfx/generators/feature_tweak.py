"""Feature Tweaking (Tolomei et al. 2017): exact counterfactuals for tree ensembles, read off
the trees' own split thresholds."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp

from cfx.generators.base import Generator, check_positive, generator_class, static
from cfx.models.trees import is_tree_ensemble

NORMS = ("l1", "l2")
#: elements per block of factuals (block·(P·d + CHUNK·max(T, d, C))): how many factuals are
#: processed at once (vectorised) while memory stays bounded (~64 MiB of float32).
BLOCK_ELEMENTS = 1 << 24
#: candidates scored per forward pass of the ensemble, cheapest first
CHUNK = 256


@generator_class
class FeatureTweak(Generator):
    """Tolomei et al.'s feature tweaking on a tree ensemble from :func:`cfx.models.from_sklearn`
    (random forest, extra trees, a decision tree, binary gradient boosting).

    Every leaf is a box ``lower < x <= upper``. For a factual x and target y⁺, each tree that
    does not vote y⁺ at x offers one candidate per leaf labelled y⁺: its ε-satisfying point

        x'_j = upper_j − ε  if x_j > upper_j,   lower_j + ε  if x_j <= lower_j,   else x_j

    (ε = min(``epsilon``, box width / 2)). Candidates are projected onto the constraints
    (immutable features restored, monotone features kept on their side of x, bounds clamped,
    one-hot groups switched to the level the leaf needs, integer grids snapped); those that flip the *ensemble*
    (p(y⁺ | x') >= τ) are kept and the K cheapest under ``norm`` (``"l2"`` as in
    CounterfactualExplanations.jl, or ``"l1"``) are returned. A factual with no valid candidate
    keeps x and ends ``not_reached``. One step: every row is done after it.

    Vectorised: all P candidates of a factual are built, projected and costed at once (one
    (P, d) array); the ensemble then scores them cheapest first, :data:`CHUNK` per forward pass,
    until K valid ones are found (a ``while_loop``: usually a few passes, not P/CHUNK); factuals
    go in blocks (``lax.map``, memory ~ ``BLOCK_ELEMENTS``). The leaf boxes are extracted once,
    on the host, when the model is translated.
    Unlike CE.jl, which sets every feature tested on the path to threshold ± ε, a feature that
    already satisfies its interval is left as it is (the paper's ε-satisfactory instance).
    """

    name = "feature_tweak"
    description = "Tolomei et al. 2017: exact counterfactuals for tree ensembles from their leaves' boxes"
    uses_gradient = False
    #: the cheapest valid candidate is the answer: cfx.explain searches at τ, not at its higher
    #: search threshold (a single leaf's ε-move rarely lifts a forest to p >= 0.75)
    exact: ClassVar[bool] = True

    yloss: object = static(None)
    epsilon: float = 0.1
    norm: str = static("l2")

    def validate(self, num_counterfactuals, n_features, n_classes):
        super().validate(num_counterfactuals, n_features, n_classes)
        check_positive("FeatureTweak.epsilon", self.epsilon)
        if self.norm not in NORMS:
            raise ValueError(f"FeatureTweak.norm must be one of {NORMS}; got {self.norm!r}")

    def prepare(self, classifier, x, target):
        if not is_tree_ensemble(classifier):
            raise TypeError(
                "FeatureTweak needs a tree ensemble translated by cfx.models.from_sklearn "
                "(RandomForestClassifier, ExtraTreesClassifier, DecisionTreeClassifier, binary "
                f"GradientBoostingClassifier); got {classifier!r}"
            )
        return None

    def init_update(self, z, ctx):
        return jnp.zeros(z.shape[:2], bool)  # whether the one step has been taken

    def gave_up(self, state):
        return state  # after its one step a row is done, valid or not

    def update(self, grad, state, z, ctx):
        n, K, d = z.shape
        cf = tweak(
            ctx.classifier,
            ctx.x,
            ctx.target,
            ctx.constraints,
            K=K,
            epsilon=self.epsilon,
            threshold=self.threshold,
            norm=self.norm,
        )
        return cf, jnp.ones_like(state)


def candidates(x, lower, upper, epsilon):
    """(..., P, d) each leaf box's ε-satisfying point for factuals x (..., 1, d)."""
    eps = jnp.minimum(epsilon, (upper - lower) / 2)  # a box narrower than 2ε: its midpoint
    return jnp.where(x > upper, upper - eps, jnp.where(x <= lower, lower + eps, x))


def _switch_levels(cand, x, paths, constraints):
    """One-hot groups: a leaf that needs a level on (x_j <= lower_j < 1) gets that level, and one
    that needs the factual's level off gets the first level its box allows on. The ε-point alone
    (0.5 + ε beside the factual's 1) would snap back to the factual's level."""
    for group in constraints.categorical_groups:
        if len(group) < 2:
            continue
        idx = jnp.asarray(group)
        cols, x_g = cand[:, idx], x[idx]
        raised = (cols > 0.5) & (x_g < 0.5)
        dropped = jnp.any((cols < 0.5) & (x_g > 0.5), axis=-1)
        allowed = (paths["upper"][:, idx] >= 1.0) & (paths["lower"][:, idx] < 1.0) & (x_g < 0.5)
        level = jnp.where(jnp.any(raised, -1), jnp.argmax(raised, -1), jnp.argmax(allowed, -1))
        switch = (jnp.any(raised, -1) | (dropped & jnp.any(allowed, -1)))[:, None]
        cand = cand.at[:, idx].set(jnp.where(switch, jax.nn.one_hot(level, len(group), dtype=cand.dtype), cols))
    return cand


def tweak(classifier, x, target, constraints, *, K=1, epsilon=0.1, threshold=0.5, norm="l2", chunk=CHUNK):
    """(n, K, d) the K cheapest valid ε-satisfying candidates per factual x (n, d) towards
    ``target`` (n,) (rows without one keep x); see :class:`FeatureTweak`."""
    apply, params = classifier.apply_fn, classifier.params
    paths = params["paths"]
    P, d = paths["lower"].shape
    T = params["trees"]["feature"].shape[0]
    chunk = min(chunk, P)
    n_chunks = -(-P // chunk)
    votes = apply.votes(params, x)  # (n, T)

    def one(args):
        x_f, t_f, votes_f = args
        cand = candidates(x_f[None], paths["lower"], paths["upper"], epsilon)
        cand = constraints.project(_switch_levels(cand, x_f, paths, constraints), x_f[None], one_hot=True)
        relevant = (paths["label"] == t_f) & (votes_f[paths["tree"]] != t_f)  # leaves of y⁺ in trees voting not y⁺
        delta = cand - x_f
        cost = jnp.sum(jnp.abs(delta), -1) if norm == "l1" else jnp.sqrt(jnp.sum(delta**2, -1))
        cost = jnp.where(relevant, cost, jnp.inf)
        # cheapest first, scored a chunk at a time: once K valid ones are found no later
        # (dearer) candidate can replace them, so the ensemble runs on a few chunks, not all P
        order = jnp.pad(jnp.argsort(cost), (0, n_chunks * chunk - P), constant_values=0)
        sorted_cost = jnp.pad(cost[order[:P]], (0, n_chunks * chunk - P), constant_values=jnp.inf)

        def more(state):
            i, best_cost, _ = state
            return (i < n_chunks) & ~jnp.all(jnp.isfinite(best_cost)) & jnp.isfinite(sorted_cost[i * chunk])

        def score(state):
            i, best_cost, best_idx = state
            idx = jax.lax.dynamic_slice(order, (i * chunk,), (chunk,))
            c = jax.lax.dynamic_slice(sorted_cost, (i * chunk,), (chunk,))
            p = jax.nn.softmax(classifier.raw_logits(cand[idx]), axis=-1)[:, t_f]
            c = jnp.where(p >= threshold, c, jnp.inf)
            neg, pick = jax.lax.top_k(-jnp.concatenate([best_cost, c]), K)
            return i + 1, -neg, jnp.concatenate([best_idx, idx])[pick]

        init = (jnp.int32(0), jnp.full((K,), jnp.inf, cost.dtype), jnp.zeros((K,), order.dtype))
        _, best_cost, best_idx = jax.lax.while_loop(more, score, init)
        return jnp.where(jnp.isfinite(best_cost)[:, None], cand[best_idx], x_f)

    block = max(1, BLOCK_ELEMENTS // (P * d + chunk * max(T, d, classifier.n_classes)))
    return jax.lax.map(one, (x, target, votes), batch_size=min(block, x.shape[0]))


__all__ = ["FeatureTweak", "tweak", "candidates"]

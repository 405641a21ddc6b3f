"""The terms of the counterfactual objective: pure per-example functions, and the :class:`Term` type.

A *term* is one weighted piece of what a search minimises, Σ_i λ_i · term_i(x', x): the
prediction loss (``yloss``, λ = 1) and the generator's penalties (cost, plausibility, diversity,
...) are all terms; ``result.terms`` reports each at the final point. (Training losses, which
fit a model, live apart in :mod:`cfx.models.losses`.)

Every function here is written for ONE example (or, for set terms, the K counterfactuals of
one factual) and reduces nothing across examples; the search batches them with ``vmap``.

Signatures:
  - ylosses:        ``yloss(logits (C,), target int) -> scalar``
  - example terms:  ``term(x_cf (d,), x (d,), ctx: TermContext) -> scalar``
  - set terms:      ``term(x_cfs (K, d), x (d,), ctx: TermContext) -> scalar`` (ctx.logits is (K, C))
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from cfx import _reductions as reductions

_EPS = 1e-12


class Term(NamedTuple):
    """One weighted term of the objective: ``weight * fn(x_cf, x, ctx)`` (was ``Term``).

    ``per="example"`` terms see one counterfactual (d,); ``per="set"`` terms see the K
    counterfactuals of a factual (K, d) and are added once per factual. A generator's
    ``terms()`` lists them all: the prediction loss ``"yloss"`` and its ``penalties()``.
    """

    name: str
    weight: Any
    fn: Callable
    per: str = "example"


@struct.dataclass
class TermContext:
    """What a term may read besides x' and x.

    Attributes:
      target: the target class y+ (int scalar).
      logits: model logits at x' ((C,) for example terms, (K, C) for set terms).
      step: the search iteration t (int scalar), for schedules such as ECCCo's decay.
      data: the generator's per-factual context (e.g. target-class neighbours), or None.
      classifier: the :class:`cfx.Classifier` (for terms that need the model itself).

    In an untargeted search (target -1) ``target`` is the class the model ranks second at the
    factual (the runner-up to its predicted class), so a yloss pushes x' away from that class.
    """

    target: jax.Array
    logits: jax.Array
    step: jax.Array
    data: Any = None
    classifier: Any = None


# --------------------------------------------------------------------------- ylosses
def cross_entropy(logits: jax.Array, target: jax.Array) -> jax.Array:
    """-log softmax(f(x'))_{y+} = logsumexp(f) − f_{y+}.

    Written as optax does: XLA fuses it into one reduction, where ``-log_softmax(f)[y+]``
    materialises every class's log-probability (1.5x slower searches on a small MLP)."""
    return reductions.logsumexp_last(logits) - reductions.pick_last(logits, target)


def logit_bce(logits: jax.Array, target: jax.Array) -> jax.Array:
    """Binary cross-entropy on the logit difference f_1 - f_0 (binary models only)."""
    margin = logits[1] - logits[0]
    sign = jnp.where(target == 1, 1.0, -1.0)
    return jax.nn.softplus(-sign * margin)


def hinge(logits: jax.Array, target: jax.Array, margin: float = 1.0) -> jax.Array:
    """max(0, margin - (f_{y+} - max_{c != y+} f_c))."""
    others = jnp.where(jnp.arange(logits.shape[-1]) == target, -jnp.inf, logits)
    return jnp.maximum(0.0, margin - (reductions.pick_last(logits, target) - reductions.max_last(others)))


def mse_probs(logits: jax.Array, target: jax.Array) -> jax.Array:
    """sum_c (p_c - 1[c = y+])^2 on probabilities (DiCE's "l2" loss)."""
    onehot = jax.nn.one_hot(target, logits.shape[-1], dtype=logits.dtype)
    return jnp.sum((jax.nn.softmax(logits) - onehot) ** 2)


def predictive_entropy(logits: jax.Array, target: jax.Array) -> jax.Array:
    """H(p) = −Σ_c p_c log p_c of softmax(f(x')); ignores the target (CLUE's untargeted loss)."""
    log_p = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(log_p) * log_p)


YLOSSES: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "cross_entropy": cross_entropy,
    "logit_bce": logit_bce,
    "hinge": hinge,
    "mse": mse_probs,
    "entropy": predictive_entropy,
}


def member_logit_bce(x_cf, x, ctx):
    """Logit-BCE on the member-averaged logit margin mean_m (f_m,1 − f_m,0) at x' (CE.jl 0.1.5's
    ``logitbinarycrossentropy(logits(M, x'), y+)``: its ensemble ``logits`` average the members'
    logits while its ``probs`` average their probabilities); a model without members: its own
    logits, i.e. :func:`logit_bce`."""
    members = getattr(ctx.classifier.apply_fn, "member_logits", None) if ctx.classifier is not None else None
    if members is None:
        return logit_bce(ctx.logits, ctx.target)
    return logit_bce(jnp.mean(members(ctx.classifier.params, x_cf), axis=0), ctx.target)


#: ylosses that need the model itself: already terms ``(x_cf, x, ctx) -> scalar``
CONTEXT_YLOSSES: dict[str, Callable] = {"member_logit_bce": member_logit_bce}


def yloss_term(yloss: str | Callable) -> Callable:
    """The prediction loss as an ordinary term: ``yloss(ctx.logits, ctx.target)``.

    ``yloss`` is a name in :data:`YLOSSES` (or in :data:`CONTEXT_YLOSSES`: a term already) or
    any callable ``(logits (C,), target) -> scalar``.
    """
    if isinstance(yloss, str) and yloss in CONTEXT_YLOSSES:
        return CONTEXT_YLOSSES[yloss]
    fn = YLOSSES[yloss] if isinstance(yloss, str) else yloss

    def term(x_cf, x, ctx):
        return fn(ctx.logits, ctx.target)

    return term


# --------------------------------------------------------------------------- distances
def l1(a: jax.Array, b: jax.Array) -> jax.Array:
    """sum_j |a_j - b_j|."""
    return jnp.sum(jnp.abs(a - b))


def l2(a: jax.Array, b: jax.Array) -> jax.Array:
    """||a - b||_2, with a tiny epsilon under the root so the gradient at a = b is 0, not NaN."""
    return jnp.sqrt(jnp.sum((a - b) ** 2) + _EPS)


def squared_l2(a: jax.Array, b: jax.Array) -> jax.Array:
    """||a - b||_2^2 = sum_j (a_j - b_j)^2 (CARLA's "L2")."""
    return jnp.sum((a - b) ** 2)


def mse(a: jax.Array, b: jax.Array) -> jax.Array:
    """mean_j (a_j - b_j)^2: the squared L2 norm over d. Much weaker than ``l2`` at one λ: for
    a step of 0.1 in every feature of d = 20, l2 = 0.45 but mse = 0.01."""
    return jnp.mean((a - b) ** 2)


def mad_l1(a: jax.Array, b: jax.Array, mad: jax.Array) -> jax.Array:
    """sum_j |a_j - b_j| / MAD_j (Wachter et al. 2017)."""
    return jnp.sum(jnp.abs(a - b) / mad)


#: Distances by name. ``l2`` is the unsquared Euclidean norm; ``squared_l2`` and ``mse`` are
#: its square (summed or averaged over features).
DISTANCES = {"l1": l1, "l2": l2, "squared_l2": squared_l2, "mse": mse}


# --------------------------------------------------------------------------- penalties
def distance_to_factual(distance: str) -> Callable:
    """The cost term dist(x', x) for ``distance`` a name in :data:`DISTANCES`."""
    fn = DISTANCES[distance]

    def term(x_cf, x, ctx):
        return fn(x_cf, x)

    return term


def mean_distance_to_neighbours(distance: str) -> Callable:
    """mean_k dist(x', n_k) over target-class points ``ctx.data["neighbours"]`` (k, d)."""
    fn = DISTANCES[distance]

    def term(x_cf, x, ctx):
        return jnp.mean(jax.vmap(fn, (None, 0))(x_cf, ctx.data["neighbours"]))

    return term


def model_loss(gate: float | None = None) -> Callable:
    """The classifier's own loss at x' against y+ (ClaPROAR): CE(f(x'), y+), averaged over the
    members of a deep ensemble (mean_m CE(f_m(x'), y+)), else on the model's logits.

    With ``gate`` the term is switched on only once p(y+|x') >= gate (the paper's variant).
    """

    def term(x_cf, x, ctx):
        members = getattr(ctx.classifier.apply_fn, "member_logits", None)
        if members is None:
            loss = cross_entropy(ctx.logits, ctx.target)
        else:
            member_logits = members(ctx.classifier.params, x_cf)  # (M, C)
            loss = jnp.mean(jax.vmap(cross_entropy, (0, None))(member_logits, ctx.target))
        if gate is None:
            return loss
        p = jnp.exp(-cross_entropy(ctx.logits, ctx.target))  # p(y+|x') = exp(−CE)
        return jnp.where(p >= gate, loss, 0.0)

    return term


def frobenius_to_factual(x_cfs, x, ctx):
    """Set term ||X' − x||_F over the K counterfactuals (K, d) of one factual: CE.jl 0.1.5's
    ``norm(x .- X′)`` (its default ``complexity``); epsilon under the root as in :func:`l2`."""
    return jnp.sqrt(jnp.sum((x_cfs - x[None, :]) ** 2) + _EPS)


def frobenius_to_point(key: str) -> Callable:
    """Set term ||X' − c||_F, c = ``ctx.data[key]`` (d,) (Gravitational's centre in CE.jl 0.1.5)."""

    def term(x_cfs, x, ctx):
        return jnp.sqrt(jnp.sum((x_cfs - ctx.data[key][None, :]) ** 2) + _EPS)

    return term


def set_model_loss(x_cfs, x, ctx):
    """Set term (ClaPROAR, CE.jl 0.1.5): once every one of the K counterfactuals is predicted
    y+, the classifier's mean loss over them (and over a deep ensemble's members) against its own
    predicted label (then y+); 0 before."""
    on = jax.lax.stop_gradient(jnp.all(jnp.argmax(ctx.logits, -1) == ctx.target))
    per = jax.vmap(lambda xc, lg: model_loss()(xc, x, ctx.replace(logits=lg)))(x_cfs, ctx.logits)
    return jnp.where(on, jnp.mean(per), 0.0)


def dice_diversity(x_cfs, x, ctx, jitter: float = 1e-4, distance: str = "l2"):
    """-det(K) with K_ij = 1 / (1 + dist(x'_i, x'_j)) (+ jitter on the diagonal), over the K
    counterfactuals of one factual (Mothilal et al. 2020). ``distance``: ``"l2"`` (CE.jl's
    ``ddp_diversity``) or ``"l1"`` (the DiCE paper and dice-ml: the proximity's L1)."""
    pairwise = jax.vmap(jax.vmap({"l1": l1, "l2": l2}[distance], (None, 0)), (0, None))(x_cfs, x_cfs)
    kernel = 1.0 / (1.0 + pairwise) + jitter * jnp.eye(x_cfs.shape[0], dtype=pairwise.dtype)  # float32 under x64 too
    return -jnp.linalg.det(kernel)

"""The generator protocol.

A generator is a frozen PyTree dataclass. Its array leaves (term weights, step sizes, the
decision threshold, data summaries) can change between calls without recompiling the search;
its static fields (which terms, which optimiser, the convergence and start rules, K) select
the compiled program. A generator says

  - ``terms()``: every term of the objective as :class:`cfx.terms.Term` (name, weight, pure
    per-example function): the prediction loss ``yloss`` and the ``penalties()`` (the terms
    besides it, the method a generator overrides);
  - ``fit(classifier, data, *, key)``: a copy holding what depends on the data or the trained
    model (MAD, sample banks, ...), called again after every retraining;
  - ``prepare(classifier, x, target)``: per-factual data computed once per search inside
    the compiled computation (e.g. target-class neighbours), read by terms as ``ctx.data``;
  - ``init_update`` / ``update``: its step rule (default: an optax optimiser), given the
    gradient and a :class:`StepContext` (per-row PRNG keys, the step number, the factuals,
    targets, classifier, constraints); ``uses_gradient = False`` skips the backward pass;
  - ``gave_up(state)``: rows the step rule cannot improve any more (they stop, "not_reached");
  - ``condition(x_cf, logits, target, classifier)``: a convergence condition of its own,
    on top of the rule (Probe: the invalidation rate is at most its target);
  - ``latent`` with ``encode`` / ``decode``: search a latent z with x' = decode(z);
  - its search options ``threshold``, ``convergence``, ``start``, ``start_scale``,
    ``min_steps`` and ``num_counterfactuals`` (set them with ``generator.replace(...)``);
  - ``validate(num_counterfactuals, n_features, n_classes)``: host-side checks before compiling.

Write your own with the :func:`generator_class` decorator and :func:`static` fields::

    @cfx.generators.generator_class
    class Sparse(cfx.generators.Generator):
        cost: float = 0.1                               # a leaf: sweeping it never recompiles
        distance: str = cfx.generators.static("l1")     # static: selects the program

        def penalties(self):
            return (Term("distance", self.cost, cfx.terms.distance_to_factual(self.distance)),)
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from cfx import _deprecated, terms as _terms
from cfx._validate import as_real, float_dtype
from cfx.terms import Term

OPTIMIZERS: dict[str, Callable[[Any], optax.GradientTransformation]] = {
    "sgd": optax.sgd,
    "adam": optax.adam,
    "rmsprop": optax.rmsprop,
    "adagrad": optax.adagrad,
}
#: threshold: p(y+|x') >= τ; generator_conditions: τ reached and every |∂loss/∂x'_j| < 0.01;
#: gradient: every |∂loss/∂x'_j| < 0.01 alone (untargeted losses); max_steps: run every step.
CONVERGENCE = ("threshold", "generator_conditions", "gradient", "max_steps")
#: The start rule: identity: x; noise: x + start_scale·N(0, I); uniform: x + start_scale·U(−1, 1)
#: (mutable features only; an array passed as ``start=`` to :func:`cfx.generate` is a start of your own).
STARTS = ("identity", "noise", "uniform")
#: The set-level search options (defaults: cfx's own search; the other values: the search of
#: CounterfactualExplanations.jl 0.1.5, used by the ``ard-2023`` recourse-dynamics preset).
SPACES = ("input", "standardized")  # standardized: search s = (x − μ)/σ, x = μ + σ⊙s
K_TERMS = ("sum", "mean")  # mean: per-counterfactual terms (yloss too) averaged over the K
STEP_SCALES = ("one", "k")  # k: every step multiplied by K
STOP_RULES = ("each", "all")  # all: a factual's K stop together, once all K have converged


class StepContext(NamedTuple):
    """What a step rule may read besides the gradient, its state and the iterate z (n, K, ·).

    Attributes:
      key: (n,) one PRNG key per factual for this step (independent of chunking and sharding).
      step: the iteration t (int scalar).
      x: (n, d) the factuals.
      target: (n,) the target classes (untargeted rows: the runner-up class at the factual).
      classifier: the :class:`cfx.Classifier` (gradient-free rules query the model).
      constraints: the resolved constraints (mutability, bounds, one-hot groups).
    """

    key: jax.Array
    step: jax.Array
    x: jax.Array
    target: jax.Array
    classifier: Any
    constraints: Any


def static(default):
    """A static (compile-time) generator field: changing it selects another program."""
    return struct.field(pytree_node=False, default=default)


def fitted(default=None):
    """A leaf that :meth:`Generator.fit` computes from data (not a hyperparameter to set)."""
    return struct.field(pytree_node=True, default=default, metadata={"fitted": True})


#: Generator fields renamed in cfx 0.2 (old keyword -> new field); the old keywords still work, with a warning.
RENAMED_FIELDS = {"init": "start", "init_scale": "start_scale"}


def generator_class(cls):
    """Make ``cls`` a generator class: a frozen, keyword-only PyTree dataclass (``flax.struct``)."""
    cls = struct.dataclass(cls, kw_only=True)
    return _deprecated.renamed_keywords(cls, RENAMED_FIELDS, translate=getattr(cls, "old_keywords", None))


def generator(cls):
    """Deprecated name of :func:`generator_class` (cfx 0.3 removes it)."""
    _deprecated.warn("the decorator cfx.generators.generator", "use @cfx.generators.generator_class")
    return generator_class(cls)


@generator_class
class Generator:
    """Shared fields.

    Step rule: ``learning_rate`` (leaf) and static ``optimizer`` (a name in ``OPTIMIZERS`` or a
    callable ``lr -> optax.GradientTransformation``). Objective: static ``yloss`` (a name in
    ``cfx.terms.YLOSSES``, a callable ``(logits, target) -> scalar``, or None for none).
    Search options: ``threshold`` τ (leaf), ``min_steps`` (int leaf: no row stops earlier),
    ``start_scale`` (leaf) and static ``convergence`` (one of ``CONVERGENCE``), ``start`` (the
    start rule, one of ``STARTS``), ``num_counterfactuals`` K. Change them with ``replace``.

    An adaptive optimiser (``"adam"``) takes steps of about ``learning_rate`` in every
    feature whatever the gradient's size: at η = 0.1 with threshold convergence a row often
    stops after one overshooting step. Use a smaller η (0.01) or ``min_steps``.
    """

    name: ClassVar[str] = "generator"
    description: ClassVar[str] = ""
    uses_gradient: ClassVar[bool] = True  # False: the driver skips the backward pass (grad = 0)
    #: Why this generator cannot serve a regression target (cfx.models.Regressor.within), or None:
    #: set by generators whose terms need class probabilities or class energies.
    regression_refusal: ClassVar[str | None] = None

    learning_rate: float = 0.1
    optimizer: Any = static("sgd")
    yloss: Any = static("cross_entropy")
    threshold: float = 0.5
    convergence: str = static("threshold")
    start: str = static("identity")
    start_scale: float = 0.1
    min_steps: int = 0
    num_counterfactuals: int = static(1)
    space: str = static("input")
    space_mean: Any = fitted()
    space_scale: Any = fitted()
    k_terms: str = static("sum")
    step_scale: str = static("one")
    stop_rule: str = static("each")
    step_tolerance: Any = static(None)

    @property
    def init(self) -> str:
        """Deprecated: the start rule is ``start``."""
        _deprecated.warn(f"{type(self).__name__}.init", "read .start (the start rule)")
        return self.start

    @property
    def init_scale(self):
        """Deprecated: ``start_scale``."""
        _deprecated.warn(f"{type(self).__name__}.init_scale", "read .start_scale")
        return self.start_scale

    @property
    def latent(self) -> bool:
        """Whether the search variable z is not x itself (x' = decode(z)): a VAE's latent space
        (REVISE, CLUE override this with True) or the standardised space s = (x − μ)/σ."""
        return self.space == "standardized"

    def __post_init__(self):
        name = type(self).__name__
        if not (
            self.yloss is None
            or callable(self.yloss)
            or self.yloss in _terms.YLOSSES
            or self.yloss in _terms.CONTEXT_YLOSSES
        ):
            raise ValueError(
                f"{name}.yloss must be one of {sorted([*_terms.YLOSSES, *_terms.CONTEXT_YLOSSES])}, "
                f"a callable (logits, target) -> scalar, or None; got {self.yloss!r}"
            )
        if not (callable(self.optimizer) or self.optimizer in OPTIMIZERS):
            raise ValueError(
                f"{name}.optimizer must be one of {sorted(OPTIMIZERS)} or a callable lr -> optax "
                f"transformation; got {self.optimizer!r}"
            )
        if self.convergence not in CONVERGENCE:
            raise ValueError(f"{name}.convergence must be one of {CONVERGENCE}; got {self.convergence!r}")
        if self.start not in STARTS:
            raise ValueError(f"{name}.start must be one of {STARTS}; got {self.start!r}")
        for field, allowed in (
            ("space", SPACES),
            ("k_terms", K_TERMS),
            ("step_scale", STEP_SCALES),
            ("stop_rule", STOP_RULES),
        ):
            if getattr(self, field) not in allowed:
                raise ValueError(f"{name}.{field} must be one of {allowed}; got {getattr(self, field)!r}")
        tol = self.step_tolerance
        if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol > 0):
            raise ValueError(f"{name}.step_tolerance must be None or a number > 0; got {tol!r}")
        k = self.num_counterfactuals
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"{name}.num_counterfactuals must be an int >= 1; got {k!r}")

    # ------------------------------------------------------------------ the objective
    def terms(self) -> tuple[Term, ...]:
        """Every term of the objective: the prediction loss (weight 1) and :meth:`penalties`."""
        head = () if self.yloss is None else (Term("yloss", 1.0, _terms.yloss_term(self.yloss)),)
        terms = head + tuple(self.penalties())
        if self.k_terms == "mean":  # the objective per factual: mean over K of the per-example terms
            terms = tuple(
                p if p.per == "set" else p._replace(weight=p.weight / self.num_counterfactuals) for p in terms
            )
        return terms

    def penalties(self) -> tuple[Term, ...]:
        """The terms besides the prediction loss (the penalties); none by default."""
        return ()

    def fit(self, classifier, data, *, key: jax.Array) -> "Generator":
        """A copy holding what depends on ``data`` (a :class:`cfx.data.Dataset`) or on the
        trained ``classifier`` (may be None for data-only generators). Nothing by default."""
        return self

    def needs(self) -> frozenset[str]:
        """What this generator still needs from the trained model besides the classifier, so a
        runner provides it without knowing the class: ``"calibration"`` (fit with a calibrated
        classifier, whose q̂ fills the field ``q_hat``) and ``"conditional_samples"`` (the model's
        conditional samples (C, k, d), passed to ``fit`` as ``samples=`` and kept in ``samples``;
        ``fit`` draws them itself when none are passed). Nothing by default."""
        return frozenset()

    def prepare(self, classifier, x: jax.Array, target: jax.Array) -> Any:
        """Per-factual data (leading axis n) computed once per search, read by terms as
        ``ctx.data``; None by default."""
        return None

    # ------------------------------------------------------------------ latent search
    def encode(self, x: jax.Array) -> jax.Array:
        """Starting point z_0 for factuals x (n, K, d) when ``latent``: (x − μ)/σ in the
        standardised space; identity otherwise."""
        return (x - self.space_mean) / self.space_scale if self.space == "standardized" else x

    def decode(self, z: jax.Array) -> jax.Array:
        """Counterfactual x' = g(z) (n, K, m) -> (n, K, d) when ``latent``: μ + σ⊙z in the
        standardised space; identity otherwise."""
        return self.space_mean + self.space_scale * z if self.space == "standardized" else z

    def with_space(self, data) -> "Generator":
        """A copy searching the standardised space of ``data`` (a Dataset or an (n, d) array):
        μ, σ its column means and (n − 1) standard deviations (zero σ -> 1), fixed from here on."""
        X = np.asarray(getattr(data, "X", data), float_dtype())
        scale = X.std(0, ddof=1)
        return self.replace(
            space="standardized",
            space_mean=jnp.asarray(X.mean(0)),
            space_scale=jnp.asarray(np.where(scale > 0, scale, 1.0), float_dtype()),
        )

    # ------------------------------------------------------------------ the step rule
    def make_optimizer(self) -> optax.GradientTransformation:
        """The optax transformation of ``optimizer`` (a name in ``OPTIMIZERS`` or a callable) at ``learning_rate``."""
        factory = OPTIMIZERS.get(self.optimizer, self.optimizer) if isinstance(self.optimizer, str) else self.optimizer
        return factory(self.learning_rate)

    def init_update(self, z: jax.Array, ctx: "StepContext") -> Any:
        """Step-rule state for the start z (n, K, ·)."""
        return self.make_optimizer().init(z)

    def update(self, grad: jax.Array, state: Any, z: jax.Array, ctx: "StepContext") -> tuple[jax.Array, Any]:
        """One step for all counterfactuals: returns (z_next before projection, new state).

        ``grad`` already has immutable components zeroed (zeros for a generator with
        ``uses_gradient = False``); ``ctx`` holds per-row keys, the step number, the factuals,
        the targets, the classifier and the constraints.
        """
        updates, state = self.make_optimizer().update(grad, state, z)
        if self.step_scale == "k":  # CE.jl 0.1.5 multiplies every step by K
            updates = jax.tree_util.tree_map(lambda u: u * self.num_counterfactuals, updates)
        return optax.apply_updates(z, updates), state

    def settle(self, converged: jax.Array, grad: jax.Array) -> jax.Array:
        """The search's (n, K) verdict after the set options: with ``step_tolerance`` a
        counterfactual converges only once its plain-descent step η·s·|∂loss/∂z_j| (s = K with
        ``step_scale="k"``) is below it in every coordinate; with ``stop_rule="all"`` a factual's
        K converge together, once every one of them has."""
        if self.step_tolerance is not None:
            scale = self.learning_rate * (self.num_counterfactuals if self.step_scale == "k" else 1)
            converged = converged & (jnp.max(jnp.abs(scale * grad), axis=-1) < self.step_tolerance)
        if self.stop_rule == "all":
            converged = jnp.broadcast_to(jnp.all(converged, axis=-1, keepdims=True), converged.shape)
        return converged

    def condition(self, x_cf: jax.Array, logits: jax.Array, target: jax.Array, classifier) -> jax.Array | None:
        """(n, K) bool that must also hold for a counterfactual x_cf (n, K, d) to converge,
        besides the convergence rule (logits (n, K, C), target (n,)); None: nothing more."""
        return None

    def readout(self, z: jax.Array) -> jax.Array | None:
        """The counterfactual (n, K, d) a step checks for convergence and the search returns, read
        from the iterate z when it is not the decoded z (a latent search that carries the point
        before its redraw: :class:`cfx.generators.VAESpace` with ``resample``); None (the default):
        the decoded iterate. The search projects it onto the constraints."""
        return None

    def gave_up(self, state: Any) -> jax.Array | None:
        """(n, K) bool: rows the step rule can no longer move (they stop); None: never."""
        return None

    # ------------------------------------------------------------------ checks
    def validate(self, num_counterfactuals: int, n_features: int, n_classes: int) -> None:
        """Raise ValueError (before compiling) when the generator cannot run on this problem:
        weights must be finite and >= 0, the learning rate finite and > 0, τ in (0, 1];
        subclasses add their own checks (data summaries of the right width, K > 1, ...)."""
        name = type(self).__name__
        check_positive(f"{name}.learning_rate", self.learning_rate)
        tau = as_real(f"{name}.threshold", self.threshold)
        if not (tau.shape == () and 0.0 < float(tau) <= 1.0):
            raise ValueError(f"threshold must be a probability in (0, 1]; got {self.threshold!r}")
        steps = np.asarray(self.min_steps)
        if not (steps.shape == () and np.issubdtype(steps.dtype, np.integer) and int(steps) >= 0):
            raise ValueError(f"{name}.min_steps must be an int >= 0; got {self.min_steps!r}")
        if self.space == "standardized" and (self.space_mean is None or self.space_scale is None):
            raise ValueError(
                f"{name}: space='standardized' needs space_mean and space_scale; use generator.with_space(train)"
            )
        if self.space == "standardized":
            self._check_width("space_mean", self.space_mean, n_features, "use generator.with_space(train)")
        scale = as_real(f"{name}.start_scale", self.start_scale)
        if not (np.all(np.isfinite(scale)) and np.all(scale >= 0)):
            raise ValueError(f"{name}.start_scale must be finite and >= 0; got {self.start_scale!r}")
        for penalty in self.terms():
            weight = as_real(f"{name}: the weight of {penalty.name!r}", penalty.weight)
            if not (np.all(np.isfinite(weight)) and np.all(weight >= 0)):
                raise ValueError(
                    f"{name}: the weight of {penalty.name!r} must be finite and >= 0; got {penalty.weight!r}"
                )

    def _check_width(self, field: str, array, n_features: int, hint: str) -> None:
        """A data summary stored on the generator must have the classifier's feature width."""
        if array is None:
            raise ValueError(f"{type(self).__name__}.{field} is missing: {hint}")
        if np.shape(array)[-1] != n_features:
            raise ValueError(
                f"{type(self).__name__}.{field} has {np.shape(array)[-1]} features; the classifier expects "
                f"{n_features} ({hint} with the classifier's training data)"
            )


def check_positive(label: str, value) -> None:
    """Raise ValueError naming ``label`` unless every entry of ``value`` is finite and > 0."""
    arr = as_real(label, value)
    if not (np.all(np.isfinite(arr)) and np.all(arr > 0)):
        raise ValueError(f"{label} must be finite and > 0; got {value!r}")


def numpy_rng(key: jax.Array) -> np.random.Generator:
    """A numpy generator seeded from a PRNG key (host-side sampling in ``fit``):
    ``jax.random.key(s)`` gives ``numpy.random.default_rng(s)``."""
    key = jnp.asarray(key)
    data = np.asarray(key if key.dtype == jnp.uint32 else jax.random.key_data(key))
    return np.random.default_rng(int(data.ravel()[-1]))


__getattr__ = _deprecated.module_aliases(
    "cfx.generators.base", {"Penalty": ("cfx.terms", "Term"), "INITS": ("cfx.generators.base", "STARTS")}
)

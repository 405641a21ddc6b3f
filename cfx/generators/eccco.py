"""ECCCo and ECCo: energy-constrained (conformal) counterfactuals (Altmeyer et al., AAAI 2024).

ECCCo (SPEC §2) minimises, per counterfactual x' of a factual x with target y+,

    yloss(f̄(x'), y+) + cost·‖x' − x‖₁ + energy·φ_t·(E(x') + r·E(x')²) + set_size·Ω(x')

- E(x') = E(x'|y+) = −f̄_{y+}(x'), the energy of the target class (its negative logit);
- f̄ = the model's logits, or for a deep ensemble the member-averaged logits (1/M) Σ_m f_m
  (SPEC §3: "logits averaged for yloss in ECCCo"); yloss and energy both use f̄;
- φ_t = exp(−decay_rate·t) when t mod decay_every = 0, else 1, at search iteration t
  (ECCCo.jl's default, decay = (0.1, 5): φ_0 = 1, φ_1..4 = 1, φ_5 = e^−0.5, φ_10 = e^−1);
- r = ``ridge`` (default 0);
- Ω(x') = max(0, Σ_y σ((q̂ − (1 − p(y|x'))) / T) − κ), the smooth conformal set size with the
  model's own p (ensembles: averaged probabilities), switched on only once p(y+|x') >= 0.5
  (0 below, with zero gradient); ``empty_set="complement"`` counts Σ_y (1 − C_y) where the hard
  set is empty (ConformalPrediction.jl's rule); q̂ from a classifier calibrated by
  :func:`cfx.models.conformal.calibrate`, stored by :meth:`ECCCo.fit`.

No SGLD runs during the search: the energy term's gradient is that of −f̄_{y+}.

ECCo is ECCCo without the conformal term, as used inside counterfactual training (SPEC §5);
it needs no calibration. Two more ablations (SPEC §2):

- ECCCo+ (:class:`ECCCoPlus`): the same objective searched in PCA space, x' = z W + μ
  (:mod:`cfx.generators.pca`, fitted on the training data by ``fit``);
- ECCCo-L1 (:class:`ECCCoL1`): the energy term replaced by (1/k) Σ_i ‖x' − S_{y+,i}‖₁, the
  mean L1 distance to k low-energy samples S of the model's own conditional p_θ(x|y+)
  (:func:`cfx.sampling.conditional_samples`), weighted by ``energy``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from cfx import _reductions as reductions
from cfx import terms
from cfx._validate import as_real, float_dtype
from cfx.generators import pca
from cfx.generators.base import Generator, Term, check_positive, fitted, generator_class, static


def averaged_logits(x_cf: jax.Array, ctx: terms.TermContext) -> jax.Array:
    """f̄(x'): the member-averaged logits (1/M) Σ_m f_m(x') of a deep ensemble (its
    ``apply_fn.member_logits``), else the model's logits ``ctx.logits``."""
    members = getattr(ctx.classifier.apply_fn, "member_logits", None) if ctx.classifier is not None else None
    if members is None:
        return ctx.logits
    return jnp.mean(members(ctx.classifier.params, x_cf), axis=0)


def decay(step, rate=0.1, every: int = 5) -> jax.Array:
    """φ_t = exp(−rate·t) if t mod every = 0 else 1 (ECCCo.jl's energy-penalty schedule)."""
    t = jnp.asarray(step)
    return jnp.where(t % every == 0, jnp.exp(-rate * t.astype(float_dtype())), 1.0)


def polynomial_decay(step, scale=0.1, offset=1.0, power=0.9) -> jax.Array:
    """φ_t = a·(b + t + 1)^(−p), a = ``scale``, b = ``offset``, p = ``power`` at search step t = 0, 1, ...
    (CounterfactualExplanations.jl's ``energy_constraint`` on its counterfactual-training branch)."""
    t = jnp.asarray(step).astype(float_dtype())
    return scale * (offset + t + 1.0) ** (-power)


def polynomial_schedule(max_steps: int) -> dict:
    """The polynomial schedule CE.jl derives from the search's step budget T: b = round(T/25),
    a = b/10, p = 0.9 (Julia's ``round`` rounds half to even, as Python's does). T < 13 gives
    b = a = 0, i.e. no energy term at all, as in the reference. Returns ECCo fields."""
    b = float(round(int(max_steps) / 25))
    return {"decay_schedule": "polynomial", "decay_offset": b, "decay_scale": b / 10, "decay_power": 0.9}


def energy_penalty(
    ridge=0.0, rate=0.1, every: int = 5, schedule: str = "exponential", scale=0.1, offset=1.0, power=0.9
):
    """The term φ_t·(E(x') + r·E(x')²), E(x') = −f̄_{y+}(x'), as ``term(x_cf, x, ctx)``; φ_t is
    :func:`decay` (``schedule="exponential"``) or :func:`polynomial_decay` (``"polynomial"``)."""

    def term(x_cf, x, ctx):
        energy = -reductions.pick_last(averaged_logits(x_cf, ctx), ctx.target)  # masked: no scatter in ∇
        phi = (
            decay(ctx.step, rate, every)
            if schedule == "exponential"
            else polynomial_decay(ctx.step, scale, offset, power)
        )
        return phi * (energy + ridge * energy**2)

    return term


#: What Ω counts when the hard prediction set {y : 1 − p(y|x') <= q̂} is empty: "none" (cfx:
#: Σ_y C_y as always) or "complement" (ConformalPrediction.jl 0.1.12: Σ_y (1 − C_y)).
EMPTY_SET_RULES = ("none", "complement")


def set_size_penalty(q_hat, temperature=0.1, kappa=1.0, gate: float = 0.5, empty_set: str = "none"):
    """Ω(x') = max(0, Σ_y C_y − κ), C_y = σ((q̂ − 1 + p(y|x')) / T), when p(y+|x') >= gate, else 0;
    with ``empty_set="complement"`` Σ_y (1 − C_y) replaces Σ_y C_y where the hard set is empty."""

    def term(x_cf, x, ctx):
        probs = jnp.exp(ctx.logits - reductions.logsumexp_last(ctx.logits)[..., None])
        membership = jax.nn.sigmoid((q_hat - (1.0 - probs)) / temperature)
        size = reductions.sum_last(membership)
        if empty_set == "complement":
            empty = jnp.all((1.0 - probs) > q_hat, axis=-1)
            size = jnp.where(empty, reductions.sum_last(1.0 - membership), size)
        omega = jnp.maximum(0.0, size - kappa)
        return jnp.where(reductions.pick_last(probs, ctx.target) >= gate, omega, 0.0)

    return term


def _averaged_yloss(yloss):
    fn = terms.YLOSSES[yloss] if isinstance(yloss, str) else yloss

    def term(x_cf, x, ctx):
        return fn(averaged_logits(x_cf, ctx), ctx.target)

    return term


@generator_class
class ECCo(Generator):
    """Energy-constrained counterfactuals: yloss(f̄) + cost·‖x' − x‖₁ + energy·φ_t·(E + r·E²).

    Defaults are counterfactual training's ECCo (SPEC §5, CounterfactualTraining.jl): cost
    0.001, energy 5.0, plain gradient descent with learning rate 0.25, threshold convergence,
    start at the factual. ``ridge`` r (0), ``decay_rate`` (0.1, a leaf) and ``decay_every``
    (5, static) set the energy term and its schedule φ_t. No calibration needed.

    ``decay_schedule="polynomial"`` (static; default ``"exponential"``) replaces φ_t by
    a·(b + t + 1)^(−p) with a = ``decay_scale``, b = ``decay_offset``, p = ``decay_power``
    (leaves): the schedule of CE.jl's ``energy_constraint``, which counterfactual training
    (CounterfactualTraining.jl) uses; :func:`polynomial_schedule` gives its values for T steps
    (T = 30: φ_0 = 0.1·2^−0.9 ≈ 0.054, so λ_energy = 5 weighs the energy about 0.27 at the start).

    Caution, the defaults as an evaluation search: with φ_0 = 1 the first step moves x by
    0.25·(∇yloss + 5·∇E), about 1.25·‖∇f_{y⁺}‖, which usually passes τ at once, so the search
    stops after one step and its IP measures the slope of the target logit rather than
    plausibility (a model with steeper logits "loses"; docs/ct.md, diagnosis). To compare models,
    search in small steps to τ, e.g. ``ECCo(cost=0.0, learning_rate=0.1, ridge=1e-3, threshold=0.95,
    **polynomial_schedule(50))`` (CounterfactualTraining.jl's evaluation), and check ``steps`` > 1.

    Example::

        res = cfx.generate(cfx.generators.ECCo(), clf, x, target=1, key=jax.random.key(0), max_steps=30)
    """

    name = "ecco"
    description = "ECCCo without the conformal term (counterfactual training's generator)"
    regression_refusal = (
        "its energy −f_y(x') is a classifier's class-conditional energy (a JEM's); ECCCo adds a "
        "conformal prediction set over classes"
    )

    learning_rate: float = 0.25
    cost: float = 0.001
    energy: float = 5.0
    ridge: float = 0.0
    decay_rate: float = 0.1
    decay_every: int = static(5)
    decay_schedule: str = static("exponential")
    decay_scale: float = 0.1
    decay_offset: float = 1.0
    decay_power: float = 0.9

    def __post_init__(self):
        super().__post_init__()
        every = self.decay_every
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"{type(self).__name__}.decay_every must be an int >= 1; got {every!r}")
        if self.decay_schedule not in ("exponential", "polynomial"):
            raise ValueError(
                f"{type(self).__name__}.decay_schedule must be 'exponential' or 'polynomial'; "
                f"got {self.decay_schedule!r}"
            )

    def terms(self):
        """yloss on the member-averaged logits f̄, then the penalties."""
        head = () if self.yloss is None else (Term("yloss", 1.0, _averaged_yloss(self.yloss)),)
        return head + tuple(self.penalties())

    def penalties(self):
        return (
            Term("distance", self.cost, terms.distance_to_factual("l1")),
            Term(
                "energy",
                self.energy,
                energy_penalty(
                    self.ridge,
                    self.decay_rate,
                    self.decay_every,
                    self.decay_schedule,
                    self.decay_scale,
                    self.decay_offset,
                    self.decay_power,
                ),
            ),
        )

    def validate(self, num_counterfactuals, n_features, n_classes):
        super().validate(num_counterfactuals, n_features, n_classes)
        name = type(self).__name__
        for field in ("ridge", "decay_rate", "decay_scale", "decay_offset", "decay_power"):
            value = np.asarray(getattr(self, field), np.float64)
            if not (value.shape == () and np.isfinite(value) and value >= 0):
                raise ValueError(f"{name}.{field} must be a finite number >= 0; got {getattr(self, field)!r}")


@generator_class
class ECCCo(ECCo):
    """Energy-constrained conformal counterfactuals (see the module docstring for the objective).

    Defaults (SPEC §2): cost 0.1, set_size 0.1, energy 0.5 (the paper's weights for linearly
    separable data, California housing and GMSC; Moons and Circles use energy 0.2, German
    credit 0.1 with ridge 0.5, MNIST cost 0.01 / energy 0.3), plain gradient descent with
    learning rate 0.05, generator-conditions convergence (p(y+|x') >= τ and every
    |∂loss/∂x'_j| < 0.01), start at the factual; T = 0.1, κ = 1 for the set size.

    The set-size term needs q̂: calibrate the classifier and fit the generator with it::

        conf = cfx.models.conformal.calibrate(clf, cal_data, alpha=0.05)
        gen = cfx.generators.ECCCo().fit(conf, train, key=jax.random.key(0))
        res = cfx.generate(gen, conf, x, target=1, key=jax.random.key(0))

    With ``set_size=0`` and no q̂ the term is left out (the "no conformal" ablation).
    """

    name = "eccco"
    description = "Altmeyer et al. 2024: yloss + cost * L1 + energy * E(x'|y+) + set_size * smooth set size"

    learning_rate: float = 0.05
    convergence: str = static("generator_conditions")
    cost: float = 0.1
    energy: float = 0.5
    set_size: float = 0.1
    temperature: float = 0.1
    kappa: float = 1.0
    empty_set: str = static("none")
    q_hat: jnp.ndarray | None = fitted()

    def fit(self, classifier, data, *, key):
        """Store q̂ of a calibrated classifier (a :class:`cfx.models.conformal.ConformalClassifier`);
        any other classifier (or None) leaves q̂ unset, so a stale q̂ never survives retraining.
        T and κ stay the generator's own fields (not the classifier's)."""
        q_hat = getattr(classifier, "q_hat", None)
        return self.replace(q_hat=None if q_hat is None else jnp.asarray(q_hat, float_dtype()))

    def needs(self) -> frozenset[str]:
        """``{"calibration"}`` while q̂ is unset and the set-size term is on."""
        on = self.q_hat is None and np.any(np.asarray(self.set_size, np.float64) != 0)
        return frozenset({"calibration"}) if on else frozenset()

    def fitted_for(self, classifier) -> "ECCCo":
        """Unfitted plain ECCCo given a calibrated classifier: fitted from it (q̂ is all its fit
        needs), so ``cfx.generate(ECCCo(), conf, ...)`` works; anything else is returned as is
        (variants whose fit needs data, a q̂ already set, or the set-size term switched off)."""
        if (
            self.q_hat is None
            and getattr(classifier, "q_hat", None) is not None
            and np.any(np.asarray(as_real(f"{type(self).__name__}.set_size", self.set_size)) != 0)
        ):
            if type(self).fit is not ECCCo.fit:
                name = type(self).__name__
                raise ValueError(
                    f"{name} is not fitted: its fit needs the training data as well as the calibrated "
                    f"classifier: {name}().fit(conf, train, key=key)"
                )
            return self.fit(classifier, None, key=None)
        return self

    @classmethod
    def from_classifier(cls, classifier, **hyperparams) -> "ECCCo":
        """``ECCCo(**hyperparams).fit(classifier, None, key=None)`` for a calibrated classifier."""
        return cls(**hyperparams).fit(classifier, None, key=None)

    def penalties(self):
        out = super().penalties()
        if self.q_hat is None:  # structural (q̂ unset): validate allows this only with set_size = 0
            return out
        return out + (
            Term(
                "set_size",
                self.set_size,
                set_size_penalty(self.q_hat, self.temperature, self.kappa, empty_set=self.empty_set),
            ),
        )

    def validate(self, num_counterfactuals, n_features, n_classes):
        name = type(self).__name__
        if self.q_hat is None and np.any(np.asarray(self.set_size, np.float64) != 0):
            raise ValueError(
                f"{name}.q_hat is unset: its set-size term needs the conformal quantile q̂ of a calibrated "
                f"classifier (cfx.models.ConformalClassifier), and none was given: conf = cfx.models.calibrate(clf, calibration_data, "
                f"alpha=0.05), then search with conf (ECCCo() takes q̂ from it; a variant is fitted first: "
                f"{name}().fit(conf, train, key=key)); or set set_size=0 to leave the term out"
            )
        super().validate(num_counterfactuals, n_features, n_classes)
        if self.q_hat is not None:
            q = as_real(f"{name}.q_hat", self.q_hat)
            if not (q.shape == () and np.isfinite(q)):
                raise ValueError(f"{name}.q_hat must be a finite scalar; got {self.q_hat!r}")
        if self.empty_set not in EMPTY_SET_RULES:
            raise ValueError(f"{name}.empty_set must be one of {EMPTY_SET_RULES}; got {self.empty_set!r}")
        check_positive(f"{name}.temperature", self.temperature)
        kappa = np.asarray(self.kappa, np.float64)
        if not (kappa.shape == () and np.isfinite(kappa) and kappa >= 0):
            raise ValueError(f"{name}.kappa must be a finite number >= 0; got {self.kappa!r}")


@generator_class
class ECCCoPlus(ECCCo):
    """ECCCo+: ECCCo's objective searched in PCA space (SPEC §2), x' = decode(z) = z W + μ.

    ``fit`` stores q̂ (as :meth:`ECCCo.fit`) and a PCA of the training data with
    ``n_components`` (static; None: all min(n, d) components, a pure rotation; the paper uses
    the latent size of its VAE). The terms see the decoded x' (projected onto the
    constraints, immutable features restored), so cost, energy and set size are those of
    ECCCo in input space; only the search variable lives in the principal subspace.
    """

    name = "eccco_plus"
    description = "ECCCo+ (Altmeyer et al. 2024): ECCCo searched in the PCA space of the training data"
    latent = True

    pca_mean: jnp.ndarray | None = fitted()
    pca_components: jnp.ndarray | None = fitted()
    n_components: int | None = static(None)

    def fit(self, classifier, data, *, key):
        """q̂ from a calibrated classifier, and the PCA (μ, W) of ``data.X``."""
        out = super().fit(classifier, data, key=key)
        if data is None:
            raise ValueError("ECCCoPlus.fit needs the training data to fit its PCA (got data=None)")
        mean, components = pca.fit_pca(getattr(data, "X", data), self.n_components)
        return out.replace(pca_mean=jnp.asarray(mean), pca_components=jnp.asarray(components))

    def encode(self, x):
        return pca.encode(x, self.pca_mean, self.pca_components)

    def decode(self, z):
        return pca.decode(z, self.pca_mean, self.pca_components)

    def validate(self, num_counterfactuals, n_features, n_classes):
        super().validate(num_counterfactuals, n_features, n_classes)
        if self.pca_components is None or self.pca_mean is None:
            raise ValueError(
                "ECCCoPlus has no fitted PCA: latent search needs it; fit the generator "
                "(ECCCoPlus().fit(conf, train, key=key))"
            )
        self._check_width("pca_components", self.pca_components, n_features, "refit the generator")


def distance_to_samples(x_cf, x, ctx):
    """(1/k) Σ_i ‖x' − S_i‖₁ over the target-class samples ``ctx.data`` (k, d)."""
    return jnp.mean(jnp.sum(jnp.abs(ctx.data - x_cf), axis=-1))


@generator_class
class ECCCoL1(ECCCo):
    """ECCCo-L1: yloss + cost·‖x' − x‖₁ + energy·(1/k) Σ_i ‖x' − S_{y+,i}‖₁ + set_size·Ω(x').

    The energy term of ECCCo is replaced by the mean L1 distance to the k low-energy samples
    S_{y+} (C, k, d) of the model's conditional p_θ(x|y+) (SPEC §2's "ECCCo-L1"); the weight
    keeps the name ``energy`` so a data set's ECCCo weights apply unchanged. ``fit`` stores q̂
    and the samples: those passed as ``samples=`` (computed once per model and shared with the
    unfaithfulness metric), else drawn with :func:`cfx.sampling.conditional_samples`
    (``sampling_chains`` × ``sampling_steps`` improper SGLD, ``sampling_keep`` kept).
    """

    name = "eccco_l1"
    description = "ECCCo-L1 (Altmeyer et al. 2024): energy replaced by L1 distance to the model's conditional samples"

    samples: jnp.ndarray | None = fitted()
    sampling_chains: int = static(50)
    sampling_steps: int = static(500)
    sampling_keep: int = static(25)

    def fit(self, classifier, data, *, key, samples=None):
        """q̂ (as :meth:`ECCCo.fit`) and the conditional samples (C, k, d) of ``classifier``; without
        a classifier (or data) and without ``samples`` they stay unset (``validate`` refuses)."""
        out = super().fit(classifier, data, key=key)
        if samples is None:
            from cfx import sampling  # the sampler is only needed when no samples are passed in

            if classifier is None or data is None:
                return out.replace(samples=None)  # never keep samples of another model
            key = jax.random.key(0) if key is None else key
            samples = sampling.conditional_samples(
                classifier,
                data,
                key=key,
                n_chains=self.sampling_chains,
                steps=self.sampling_steps,
                keep=self.sampling_keep,
            )
        samples = jnp.asarray(samples, float_dtype())
        if samples.ndim != 3 or samples.shape[1] < 1:
            raise ValueError(f"ECCCoL1 samples must have shape (C, k >= 1, d); got {tuple(samples.shape)}")
        return out.replace(samples=samples)

    def needs(self) -> frozenset[str]:
        """ECCCo's, and ``"conditional_samples"`` while ``samples`` is unset."""
        return super().needs() | ({"conditional_samples"} if self.samples is None else set())

    def prepare(self, classifier, x, target):
        return self.samples[target]  # (n, k, d): each factual's target-class samples

    def penalties(self):
        out = (
            Term("distance", self.cost, terms.distance_to_factual("l1")),
            Term("samples_l1", self.energy, distance_to_samples),
        )
        if self.q_hat is None:
            return out
        return out + (
            Term(
                "set_size",
                self.set_size,
                set_size_penalty(self.q_hat, self.temperature, self.kappa, empty_set=self.empty_set),
            ),
        )

    def validate(self, num_counterfactuals, n_features, n_classes):
        super().validate(num_counterfactuals, n_features, n_classes)
        self._check_width(
            "samples",
            self.samples,
            n_features,
            "fit the generator with its classifier (ECCCoL1().fit(conf, train, key=key), or pass "
            "samples=cfx.sampling.conditional_samples(conf, train, key=key))",
        )
        if int(np.shape(self.samples)[0]) != n_classes:
            raise ValueError(
                f"ECCCoL1.samples holds {np.shape(self.samples)[0]} classes; the classifier has "
                f"{n_classes} (draw them with this classifier)"
            )
        if not np.all(np.isfinite(np.asarray(self.samples))):
            raise ValueError("ECCCoL1.samples holds non-finite values")

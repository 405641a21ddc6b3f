"""CTConfig: every setting of counterfactual training (SPEC §5), validated on the host.

Defaults follow CounterfactualTraining.jl: λ = (ce, div, reg, adv) = (1.0, 0.5, 0.1, 0.25);
n_ce = 1000 counterfactuals per epoch searched by ``generator``, at most T = 30 steps each; the
generator is :class:`cfx.generators.ECCo` with its defaults (L1 cost 0.001, energy 5.0, SGD
η = 0.25, stop at p(y⁺|x') ≥ τ = 0.5); nascent counterfactuals are the last iterate with
‖x_t − x‖_∞ ≤ ε = 0.3; the search domain is μ ± 2σ per feature (the code's n = 2; the paper
says 3).

The search is any generator that needs nothing from the trained model (``generator.needs()``
empty), passed as to :func:`cfx.generate`; its own fields set the step size, weights, τ, the
stopping rule and the energy schedule. CounterfactualTraining.jl's search (``preset: ct-2026`` of
the ``ct`` experiment kind, docs/ct.md) is
``ECCo(convergence="max_steps", ridge=1e-3, **polynomial_schedule(T))``: every row runs all T
steps (mature if τ is reached at the end), and φ_t = a(b + t + 1)^−0.9 with b = round(T/25),
a = b/10 (CE.jl's ``energy_constraint``) instead of ECCCo.jl's exp(−0.1·t) every 5th step.

Three options choose between cfx's semantics (the defaults) and the reference's:

- ``domain_covers_data``: the box is [min(μ − kσ, min x), max(μ + kσ, max x)] per feature
  (the reference's ``infer_domain_constraints``, k = 2) instead of μ ± kσ alone;
- ``schema_constraints``: True (cfx) searches under the schema's bounds, one-hot groups and
  integer grid too; False (the reference: CounterfactualTraining.jl builds its search data with
  the box and the mutability only) leaves every feature continuous inside the box.

``variant`` selects what is trained:

- ``"ct"``: the full objective;
- ``"contrastive"``: the ablation without the adversarial term (λ_adv = 0);
- ``"adversarial"``: the ablation without the contrastive terms (λ_div = λ_reg = 0);
- ``"baseline"``: plain cross-entropy (no search at all).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from cfx import _deprecated
from cfx._validate import as_real, real
from cfx.generators.base import Generator
from cfx.generators.eccco import ECCo, polynomial_schedule

VARIANTS = ("ct", "contrastive", "adversarial", "baseline")
STOPS = ("threshold", "max_steps")
DECAYS = ("exponential", "polynomial")


def _nonneg(name: str, value) -> float:
    v = float(as_real(f"CTConfig.{name}", value))
    if not (np.isfinite(v) and v >= 0):
        raise ValueError(f"CTConfig.{name} must be a finite number >= 0; got {value!r}")
    return v


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"CTConfig.{name} must be an int >= 1; got {value!r}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class CTConfig:
    """Counterfactual-training settings (frozen; see the module docstring).

    Attributes:
      variant: ``"ct"`` | ``"contrastive"`` | ``"adversarial"`` | ``"baseline"``.
      lambda_ce, lambda_div, lambda_reg, lambda_adv: the loss weights (all >= 0).
      n_ce: counterfactuals searched per epoch (capped at the training-set size, with a warning).
      max_steps: the most search steps T per epoch's search (<= 30 in the reference).
      generator: the search, a :class:`cfx.generators.Generator` needing nothing from the model
        (default ``ECCo()``: step size 0.25, cost 0.001, energy 5.0, τ = 0.5; the reference's τ is
        0.9 on moons, 0.75 on adult). ``CTConfig(threshold=...)`` and the other flat ECCo fields
        of cfx 0.1 still work, with a warning (they set this generator's fields).
      epsilon: L∞ radius of the nascent (adversarial) counterfactuals.
      protected: feature indices treated as immutable (search and loss), on top of the data
        set's own mutability (``schema_mutability``).
      schema_mutability: also apply the mutability of the training data's schema (its
        monotone / immutable features); False: every feature but ``protected`` is free.
      domain: a fixed box (lo, hi) for every feature instead of the inferred one (the reference's
        ``domain`` parameter: MNIST's [−1, 1]); None: the box of ``domain_sd``.
      domain_sd: the search is clamped to μ ± domain_sd·σ of the training data (None: no box
        besides the schema's bounds).
      domain_covers_data, schema_constraints: see the module docstring.

    Example::

        ct = cfx.training.CTConfig(generator=cfx.generators.ECCo(threshold=0.9), protected=(0,))
    """

    variant: str = "ct"
    lambda_ce: float = 1.0
    lambda_div: float = 0.5
    lambda_reg: float = 0.1
    lambda_adv: float = 0.25
    n_ce: int = 1000
    max_steps: int = 30
    generator: Generator = dataclasses.field(default_factory=ECCo)
    epsilon: float = 0.3
    protected: Sequence[int] = ()
    schema_mutability: bool = True
    domain_sd: float | None = 2.0
    domain_covers_data: bool = False
    schema_constraints: bool = True
    domain: tuple[float, float] | None = None

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"CTConfig.variant must be one of {VARIANTS}; got {self.variant!r}")
        if not isinstance(self.generator, Generator):
            raise TypeError(
                "CTConfig.generator must be a cfx generator, e.g. cfx.generators.ECCo(...) or "
                f"cfx.generators.make(name, ...); got {type(self.generator).__name__}"
            )
        if self.generator.needs():
            raise ValueError(
                f"CTConfig.generator: {type(self.generator).__name__} needs {sorted(self.generator.needs())} "
                "from the trained model, which changes every epoch; counterfactual training searches with a "
                "generator that needs nothing (ECCo, Generic, Wachter.from_data(train), ...)"
            )
        for name in ("domain_covers_data", "schema_constraints"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"CTConfig.{name} must be a bool; got {getattr(self, name)!r}")
        for name in ("lambda_ce", "lambda_div", "lambda_reg", "lambda_adv", "epsilon"):
            object.__setattr__(self, name, _nonneg(name, getattr(self, name)))
        object.__setattr__(self, "n_ce", _positive_int("n_ce", self.n_ce))
        object.__setattr__(self, "max_steps", _positive_int("max_steps", self.max_steps))
        if isinstance(self.protected, (str, bytes)) or not all(
            isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in self.protected
        ):
            raise TypeError(f"CTConfig.protected must be a sequence of feature indices (ints); got {self.protected!r}")
        object.__setattr__(self, "protected", tuple(sorted({int(i) for i in self.protected})))
        if self.domain_sd is not None:
            v = float(as_real("CTConfig.domain_sd", self.domain_sd))
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"CTConfig.domain_sd must be a finite number > 0 or None; got {self.domain_sd!r}")
            object.__setattr__(self, "domain_sd", v)
        if self.domain is not None:
            lo, hi = (float(as_real("CTConfig.domain", v)) for v in self.domain) if len(self.domain) == 2 else (1, 0)
            if not lo < hi:
                raise ValueError(f"CTConfig.domain must be (lo, hi) with lo < hi; got {self.domain!r}")
            object.__setattr__(self, "domain", (lo, hi))

    def weights(self) -> tuple[float, float, float, float]:
        """The effective (λ_ce, λ_div, λ_reg, λ_adv) of the variant."""
        ce, div, reg, adv = self.lambda_ce, self.lambda_div, self.lambda_reg, self.lambda_adv
        if self.variant == "contrastive":
            adv = 0.0
        elif self.variant == "adversarial":
            div = reg = 0.0
        elif self.variant == "baseline":
            div = reg = adv = 0.0
        return ce, div, reg, adv

    @property
    def searches(self) -> bool:
        """Whether this variant runs the counterfactual search each epoch."""
        return self.variant != "baseline"

    def check_features(self, n_features: int) -> None:
        """Protected indices must name features of the data (raises ValueError)."""
        bad = [i for i in self.protected if not 0 <= i < n_features]
        if bad:
            raise ValueError(
                f"CTConfig.protected: feature index {bad[0]} out of range [0, {n_features}) "
                f"(the data has {n_features} features)"
            )

    def replace(self, **changes) -> "CTConfig":
        """A copy with ``changes`` (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


#: CTConfig's flat search fields of cfx 0.1 (deprecated) -> the field of ``CTConfig.generator`` each sets.
FLAT_GENERATOR_FIELDS = {
    "learning_rate": "learning_rate",
    "cost": "cost",
    "energy": "energy",
    "ridge": "ridge",
    "threshold": "threshold",
    "stop": "convergence",
    "energy_decay": "decay_schedule",
}


def _check_flat(flat: dict) -> dict:
    """The 0.1 checks of the flat fields (same messages), as the generator's field values."""
    out = {}
    for name, value in flat.items():
        if name in ("cost", "energy", "ridge"):
            out[name] = _nonneg(name, value)
        elif name == "learning_rate":
            out[name] = real("CTConfig.learning_rate", value, low=0.0, open_low=True)
        elif name == "threshold":
            tau = float(as_real("CTConfig.threshold", value))
            if not 0.0 < tau <= 1.0:
                raise ValueError(f"CTConfig.threshold must be a probability in (0, 1]; got {value!r}")
            out[name] = tau
        else:
            allowed = STOPS if name == "stop" else DECAYS
            if value not in allowed:
                raise ValueError(f"CTConfig.{name} must be one of {allowed}; got {value!r}")
            out[name] = value
    return out


def _flat_to_generator(kwargs: dict) -> dict:
    """``CTConfig(threshold=..., stop=..., ...)`` (0.1): the flat fields set ``generator``'s (warns).
    ``energy_decay="polynomial"`` takes CE.jl's schedule for T = ``max_steps`` steps."""
    flat = {k: kwargs.pop(k) for k in list(kwargs) if k in FLAT_GENERATOR_FIELDS}
    if not flat:
        return kwargs
    names = ", ".join(f"{k}=" for k in flat)
    _deprecated.warn(
        f"CTConfig({names}...)",
        "name the search: CTConfig(generator=cfx.generators.ECCo(...)) (stop is the generator's convergence; "
        "energy_decay='polynomial' is ECCo(**polynomial_schedule(max_steps)))",
        stacklevel=4,
    )
    values = _check_flat(flat)
    changes = {FLAT_GENERATOR_FIELDS[k]: v for k, v in values.items()}
    if changes.get("decay_schedule") == "polynomial":
        changes.update(polynomial_schedule(_positive_int("max_steps", kwargs.get("max_steps", 30))))
    generator = kwargs.get("generator")
    kwargs["generator"] = (ECCo() if generator is None else generator).replace(**changes)
    return kwargs


def _flat_property(name: str):
    def get(self):
        _deprecated.warn(f"CTConfig.{name}", f"read CTConfig.generator.{FLAT_GENERATOR_FIELDS[name]}")
        return getattr(self.generator, FLAT_GENERATOR_FIELDS[name])

    return property(get, doc=f"Deprecated: ``generator.{FLAT_GENERATOR_FIELDS[name]}``.")


_deprecated.renamed_keywords(CTConfig, {}, translate=_flat_to_generator)
for _name in FLAT_GENERATOR_FIELDS:
    setattr(CTConfig, _name, _flat_property(_name))

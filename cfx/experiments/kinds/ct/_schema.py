"""The ``ct`` kind's config schema (split from :mod:`cfx.experiments.kinds.ct`): data entries,
model, evaluation and the experiment with its checks."""

from __future__ import annotations

from typing import Annotated, Mapping, Union

import pydantic

from cfx.experiments import sections
from cfx.experiments.config import Experiment, RawConfig, Spec
from cfx.experiments.fields import (
    Bool,
    Float,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
    Str,
    StrList,
    choice,
)
from cfx.experiments.kinds.ct import settings as ct_settings
from cfx.experiments.kinds.ct.settings import CTSettings

VARIANTS = ("baseline", "ct", "contrastive", "adversarial")
MODES = ("all", "protected", "single")
SINGLE_KEYS = ("threshold", "lambda_reg", "lambda_adv", "eval_threshold", "eval_max_steps")


class CTDataConfig(sections.DataSpec):
    """A data set (:class:`cfx.experiments.sections.DataSpec`) and: ``protected`` (a feature name
    or index, or a list of them; default age, else 0), ``threshold`` (τ of the CT search), ``domain_sd``,
    ``domain``, ``n_ce``, ``lambda_reg``, ``lambda_adv``, ``batch_size`` overrides, ``eval_threshold`` and ``n_individuals`` of the
    pooled evaluation, ``single`` (``threshold``, ``lambda_reg``, ``lambda_adv``, ``eval_threshold``,
    ``eval_max_steps`` of mode ``single``, which override the data set's own). ``realisation: ct-2026``
    (synthetic sets): the reference's own points, 3,600 training rows less a seeded 600-row hold-out and
    its 900 test rows (:mod:`cfx.data.julia_ct2026`; the preset's default), ``n`` and the generator options
    then unused; ``cfx``: cfx's own draw."""

    protected: Union[NonNegativeInt, Str, tuple[Union[NonNegativeInt, Str], ...], None] = None
    threshold: Probability | None = None
    domain_sd: PositiveFloat | None = None
    domain: tuple[Float, Float] | None = None
    n_ce: PositiveInt | None = None
    lambda_reg: Float | None = None
    lambda_adv: NonNegativeFloat | None = None
    batch_size: PositiveInt | None = None
    eval_threshold: Probability | None = None
    n_individuals: PositiveInt | None = None
    single: dict[str, Float] = pydantic.Field(default_factory=dict)
    realisation: Annotated[Str, choice(("ct-2026", "cfx"))] | None = None


class CTModelConfig(Spec):
    widths: tuple[PositiveInt, ...] = (32, 32)
    activation: Str = "relu"
    epochs: PositiveInt = 100
    batch_size: PositiveInt = 64
    learning_rate: PositiveFloat = 1e-3


class EvalConfig(Spec):
    """The evaluation: counterfactuals for ``n_factuals`` test points from ``generator``
    (``ecco``: CT's ECCo with this ``learning_rate``; ``generic``: L1 cost 0.1) with the CT
    search's τ, at most ``max_steps``; IP against ``ip_samples`` per class, IP* on
    ``ip_star_size`` per class with kernel ``length_scale``; FGSM / PGD (``pgd_steps``) at ``eps``;
    ``n_boot`` bootstrap replicates of IP*.

    ``protocol: pool`` is CounterfactualTraining.jl's evaluation (:mod:`cfx.training.pool`):
    ``rounds`` rounds of ``n_individuals`` test rows each, searched with ECCo once per weight in
    ``energies`` (λ_cost ``cost``, ``ridge``, energy ``decay``, τ ``threshold`` or the data set's
    ``eval_threshold``, inside the training box only with ``box``); ``pairs``: ``individual`` (each
    individual's classes drawn once for all rounds: CE.jl's ``benchmark``) or ``round`` (one per round);
    ``divergence``: IP* per ``round`` or ``pooled`` over rounds per (factual, target) (:mod:`cfx.training.pool`);
    ``draws``: one draw of classes and rows ``shared`` by the energy weights, or one ``per_energy`` (the
    reference evaluates each λ in its own ``benchmark`` call, its random stream running on)."""

    generator: Annotated[Str, choice(("ecco", "generic"))] = "ecco"
    learning_rate: PositiveFloat = 0.05
    n_factuals: PositiveInt = 500
    max_steps: PositiveInt = 100
    ip_samples: PositiveInt = 1000
    ip_star_size: PositiveInt = 100
    length_scale: PositiveFloat = 0.5
    length_scale_alt: PositiveFloat | None = None
    eps: tuple[Float, ...] = (0.0, 0.025, 0.05, 0.075, 0.1)
    pgd_steps: PositiveInt = 40
    n_boot: NonNegativeInt = 200
    protocol: Annotated[Str, choice(("single", "pool"))] = "single"
    energies: tuple[PositiveFloat, ...] = (0.1, 0.5, 1.0, 5.0, 10.0)
    rounds: PositiveInt = 100
    n_individuals: PositiveInt = 250
    threshold: Probability | None = None
    cost: Float = 0.0
    ridge: Float = 0.001
    decay: Annotated[Str, choice(("exponential", "polynomial"))] = "polynomial"
    box: Bool = False
    pairs: Annotated[Str, choice(("individual", "round"))] = "individual"
    divergence: Annotated[Str, choice(("round", "pooled"))] = "round"
    draws: Annotated[Str, choice(("shared", "per_energy"))] = "shared"


class CTExperiment(Experiment):
    kind: Str = "ct"
    data: tuple[CTDataConfig, ...]
    model: CTModelConfig = CTModelConfig()
    ct: CTSettings = CTSettings()
    variants: StrList = ("baseline", "ct")
    modes: StrList = ("all", "protected")
    evaluation: EvalConfig = EvalConfig()
    runs: PositiveInt = 1

    @classmethod
    def parse(cls, raw: RawConfig | Mapping) -> "CTExperiment":
        ctx, d = sections.begin(cls, raw, data=CTDataConfig)
        if "ct" in d:  # its generator as ct.generator (flat keys: deprecated)
            d["ct"] = ct_settings.normalise(d["ct"], ctx)
        cfg = ctx.validate(cls, d, "")
        for i, v in enumerate(cfg.variants):
            if v not in VARIANTS:
                raise ctx.error(f"variants[{i}]", f"must be one of {', '.join(VARIANTS)}, got {v!r}")
        if "baseline" not in cfg.variants:
            raise ctx.error("variants", "must include 'baseline' (reductions are measured against it)")
        for i, m in enumerate(cfg.modes):
            if m not in MODES and not (m.startswith("protected-") and len(m) > 10):
                raise ctx.error(f"modes[{i}]", f"must be one of {', '.join(MODES)} or protected-<feature>, got {m!r}")
        for i, bad in enumerate(sorted(set(dc.single) - set(SINGLE_KEYS)) for dc in cfg.data):
            if bad:
                raise ctx.error(f"data[{i}].single", f"unknown key {bad[0]!r}; allowed: {', '.join(SINGLE_KEYS)}")
        for i, dc in enumerate(cfg.data):
            if dc.domain is not None and not dc.domain[0] < dc.domain[1]:
                raise ctx.error(f"data[{i}].domain", f"must be [lo, hi] with lo < hi, got {list(dc.domain)}")
        cfg._source = None if raw.file is None else str(raw.file)
        return cfg

    def to_dict(self) -> dict:
        """The input schema: a data set's synthetic options flat in its mapping (parse(to_dict()) == self)."""
        return {**super().to_dict(), "data": [sections.flat(item, "options") for item in self.data]}

    def plan(self) -> str:
        n = len(self.data) * len(self.variants) * len(self.modes) * self.runs
        return (
            f"{len(self.data)} data x {len(self.variants)} variants x {len(self.modes)} modes x {self.runs} runs "
            f"= {n} records -> {self.output_dir}"
        )

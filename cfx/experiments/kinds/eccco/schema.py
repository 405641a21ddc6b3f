"""The ``eccco`` config: data sets (with per-data-set model and generator settings), models,
generators, the conformal calibration, the conditional sampler and the search.

Every section is a strict pydantic model (unknown keys are errors naming the key path);
registry names (data sets, models, generators, metrics) are checked with did-you-mean hints.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Mapping

import pydantic

from cfx.experiments import sections
from cfx.experiments.config import (
    Bool,
    ConfigSource,
    Float,
    IntList,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
    RawConfig,
    Spec,
    Str,
    check_label,
    check_name,
    choice,
    plain,
    suggest,
)
from cfx.experiments.sections import CalibrationSpec, GeneratorSpec, SamplingSpec, SearchSpec

__all__ = [
    "EcccoConfig",
    "DataSpec",
    "ModelSpec",
    "GeneratorSpec",
    "SamplingSpec",
    "CalibrationSpec",
    "SearchSpec",
    "FactualSpec",
    "CHOICES",
]

FloatList = Annotated[tuple[Float, ...], pydantic.BeforeValidator(lambda v: tuple(v) if isinstance(v, list) else v)]


def _model_names() -> list[str]:
    """Every registered model trained by cfx.models.fit's loop (cfx.models.MODELS; not the regressor)."""
    from cfx.models import MODELS

    return [name for name, entry in MODELS.items() if entry.fit is None]


#: Allowed values of the string options (the first is cfx's default; the second the ECCCo reference's).
CHOICES = {
    "jem_loss": ("cfx", "reference"),
    "combine": ("probabilities", "logits"),
    "batch_order": ("shuffle", "fixed"),
    "members": ("parallel", "sequential"),
    "sampling.mode": ("per_class", "per_target"),
    "factuals.pool": ("test", "train"),
    "factuals.targets": ("cfx", "random_pair"),
    "domain": ("none", "data_range"),
    "runs_vary": ("all", "factuals"),
}


class ModelSpec(sections.Entry):
    """A model and its training: ``widths``, ``epochs``, ``batch_size``, ``learning_rate``,
    ``activation``; ``n_members`` for ensembles; ``alpha`` (α1, α2, α3) and ``sgld_steps`` of
    the JEM loss (JEM models only; SPEC §3 defaults (1, 1, 0.1) and 30 steps).

    ``jem_loss``: ``cfx`` (:class:`cfx.models.JEMLoss`, per-row classes and chains) or
    ``reference`` (:class:`cfx.models.ReferenceJEMLoss`, JointEnergyModels.jl 0.1.3, with
    ``sampler_batch`` chains per iteration and ``sampler_calls`` sampler calls per iteration, 2 for the
    reference's extra call in its per-epoch evaluation pass); ``combine`` (ensembles): ``probabilities``
    (cfx: averaged member probabilities) or ``logits`` (ECCCo.jl: averaged member logits).

    The training schedule (:func:`cfx.models.fit_scheduled`; the defaults are ``cfx.models.fit``'s):
    ``batch_order`` ``shuffle`` (a new permutation every epoch) or ``fixed`` (one permutation, the same
    batches every epoch: MLJFlux); ``bagging`` f (ensembles: each member on ⌊f·n⌋ rows drawn without
    replacement, MLJEnsembles' 0.8); ``members`` ``parallel`` or ``sequential`` (ensembles: member after
    member, the JEM buffer handed on); ``epoch_pass`` (JEMs with ``jem_loss: reference``: the sampler
    run once per batch after each epoch with its final parameters, JointEnergyModels.jl's evaluation
    pass; use it with ``sampler_calls: 1``); ``buffer_from`` (a JEM with ``jem_loss: reference``): the label
    of another such model whose final sampler buffer this one starts from (trained first; the
    reference's JEM and JEM ensemble share one sampler)."""

    widths: IntList = (32, 32)
    epochs: PositiveInt = 100
    batch_size: PositiveInt = 64
    learning_rate: PositiveFloat = 1e-3
    activation: Str = "relu"
    n_members: PositiveInt = 5
    alpha: FloatList = (1.0, 1.0, 0.1)
    sgld_steps: PositiveInt = 30
    jem_loss: Str = "cfx"
    sampler_batch: PositiveInt = 50
    sampler_calls: PositiveInt = 1
    combine: Str = "probabilities"
    batch_order: Str = "shuffle"
    bagging: Probability = 1.0
    members: Str = "parallel"
    epoch_pass: Bool = False
    buffer_from: Str | None = None

    @property
    def scheduled(self) -> bool:
        """Whether the training schedule differs from ``cfx.models.fit``'s."""
        return (self.batch_order, self.bagging, self.members, self.epoch_pass, self.buffer_from) != (
            "shuffle",
            1.0,
            "parallel",
            False,
            None,
        )

    @property
    def is_jem(self) -> bool:  # energy-based (JEM loss options apply): the registry says
        """Whether the model is energy-based (the registry's ``energy_based``): JEM loss options apply."""
        from cfx.models import MODELS

        return MODELS.get(self.name).energy_based


class DataSpec(sections.DataSpec):
    """A data set (:class:`cfx.experiments.sections.DataSpec`) and: ``optional: true`` skips it
    (saying so) when its data file is missing; ``seed`` fixes the data realisation and split
    (default: derived from the config's seed and the run); ``models`` and ``generators`` map a
    model / generator label to settings that apply on this data set only (the paper's
    per-data-set weights). ``realisation: eccco-2024``: the reference's own points, test split and
    conformal fit rows (linearly_separable, moons, circles; :mod:`cfx.data.julia_eccco2024`)
    instead of cfx draws; ``seed`` then changes nothing about the data."""

    optional: Bool = False
    seed: NonNegativeInt | None = None
    realisation: Annotated[Str, choice(("eccco-2024",))] | None = None
    models: dict[str, dict[str, Any]] = pydantic.Field(default_factory=dict)
    generators: dict[str, dict[str, Any]] = pydantic.Field(default_factory=dict)


class FactualSpec(Spec):
    """Which factuals: ``pool`` ``test`` (cfx) or ``train`` (the reference draws from the training
    data); ``targets`` ``cfx`` (binary: predicted 0 → target 1; multiclass: a random other class)
    or ``random_pair`` (the reference: per factual a class f ~ U, a target t ~ U(others), then a
    random pool point predicted f, drawn with replacement)."""

    pool: Str = "test"
    targets: Str = "cfx"


class EcccoConfig(sections.GridExperiment):
    """The ECCCo reproduction grid: data x models x generators x runs (``kind: eccco``).

    ``domain``: ``none`` (the data set's own constraints) or ``data_range`` (x' clamped to the
    training split's per-feature range, as the reference does). ``runs_vary``: ``all`` (cfx: every
    run draws its own data, split and models) or ``factuals`` (the reference: data, split and
    models of run 0 in every run, trained once; each run draws its own factuals and samples)."""

    kind: Str = "eccco"
    data: tuple[DataSpec, ...]
    models: tuple[ModelSpec, ...]
    sampling: SamplingSpec = SamplingSpec()
    factuals: FactualSpec = FactualSpec()
    domain: Str = "none"
    runs_vary: Str = "all"

    @classmethod
    def parse(cls, raw: RawConfig | Mapping, *, name: str | None = None) -> "EcccoConfig":
        """Validate a raw ``kind: eccco`` config (sections checked against their registries)."""
        ctx, d = sections.begin(cls, raw, name)
        d["models"] = sections.section_list(d, "models", ctx, _model)
        d["generators"] = sections.section_list(d, "generators", ctx, _generator)
        d["data"] = sections.section_list(
            d, "data", ctx, functools.partial(_data, models=d["models"], generators=d["generators"])
        )
        for sec, spec in (
            ("sampling", SamplingSpec),
            ("calibration", CalibrationSpec),
            ("search", SearchSpec),
            ("factuals", FactualSpec),
        ):
            d[sec] = ctx.validate(spec, d.get(sec) or {}, sec)
        for path, allowed in CHOICES.items():
            sec, _, key = path.rpartition(".")
            if sec in ("sampling", "factuals"):
                _choice(getattr(d[sec], key), allowed, path, ctx)
        _choice(d.get("domain", "none"), CHOICES["domain"], "domain", ctx)
        _choice(d.get("runs_vary", "all"), CHOICES["runs_vary"], "runs_vary", ctx)
        if d["sampling"].mode == "per_target" and any(g.name == "eccco_l1" for g in d["generators"]):
            raise ctx.error(
                "sampling.mode",
                "eccco_l1 needs per-class samples; per_target draws them per "
                "counterfactual after the search (use per_class, or leave eccco_l1 out)",
            )
        if d["sampling"].keep > d["sampling"].n_chains:
            raise ctx.error(
                "sampling.keep", f"must be <= sampling.n_chains ({d['sampling'].n_chains}); got {d['sampling'].keep}"
            )
        _check_buffer_from(d, ctx)
        sections.metric_names(d, ctx)
        return sections.finish(cls, ctx, d, raw)

    def to_dict(self) -> dict:
        """A plain mapping in the input schema (parses back to an equal config)."""
        flat = sections.flat
        out = plain({k: v for k, v in self if k not in ("data", "models", "generators")})
        out.update(
            data=[flat(x, "options") for x in self.data],
            models=[flat(x, None) for x in self.models],
            generators=[flat(x, "hyperparams") for x in self.generators],
        )
        return out

    def plan(self) -> str:
        """One line describing the run (its size and output folder) for ``cfx run``."""
        n = len(self.data) * len(self.models) * len(self.generators) * self.runs
        return (
            f"eccco: {len(self.data)} data x {len(self.models)} models x {len(self.generators)} generators x "
            f"{self.runs} runs = {n} cells (optional data sets without files are skipped) -> {self.output_dir}"
        )


def _check_buffer_from(d: dict, ctx: ConfigSource) -> None:
    """``buffer_from`` names another model of the config, both JEMs with ``jem_loss: reference``; the
    source keeps one buffer (a single JEM, or an ensemble trained with ``members: sequential``)."""
    by_key = {m.key: m for m in d["models"]}
    for i, dc in enumerate(d["data"]):
        specs = {k: ModelSpec.model_validate({**m.model_dump(), **dc.models.get(k, {})}) for k, m in by_key.items()}
        for k, spec in specs.items():
            src = spec.buffer_from
            if src is None:
                continue
            path = f"data[{i}].models.{k}.buffer_from"
            if src not in specs or src == k:
                raise ctx.error(
                    path, f"expected the label of another model ({', '.join(x for x in specs if x != k)}); got {src!r}"
                )
            one = specs[src].members == "sequential" or not _is_ensemble(specs[src].name)
            if not (spec.is_jem and specs[src].is_jem and spec.jem_loss == specs[src].jem_loss == "reference" and one):
                raise ctx.error(
                    path,
                    "both models must be JEMs with jem_loss: reference, the source a jem or a "
                    "jem_ensemble with members: sequential",
                )
            if specs[src].buffer_from is not None:
                raise ctx.error(
                    path, f"model {src!r} takes its own buffer from another model; chains are not supported"
                )


def _is_ensemble(name: str) -> bool:
    from cfx.models import MODELS

    return MODELS.get(name).ensemble


def _choice(value: Any, allowed: tuple, path: str, ctx: ConfigSource) -> None:
    if value not in allowed:
        raise ctx.error(
            path, f"expected one of {', '.join(map(repr, allowed))}{suggest(str(value), list(allowed))}; got {value!r}"
        )


def _mapping(raw: Any, path: str, ctx: ConfigSource) -> dict:
    if not isinstance(raw, Mapping):
        raise ctx.error(path, f"expected a mapping, got {raw!r}")
    return dict(raw)


def _model(raw: Any, path: str, ctx: ConfigSource) -> ModelSpec:
    spec = ctx.validate(ModelSpec, _mapping(raw, path, ctx), path)
    check_name(spec.name, _model_names(), "model", f"{path}.name", ctx)
    if spec.label is None:
        check_label(spec.name, f"{path}.name", ctx)
    for key in ("jem_loss", "combine", "batch_order", "members"):
        _choice(getattr(spec, key), CHOICES[key], f"{path}.{key}", ctx)
    if spec.epoch_pass and not (spec.is_jem and spec.jem_loss == "reference"):
        raise ctx.error(f"{path}.epoch_pass", "needs a JEM model with jem_loss: reference (the pass runs its sampler)")
    if len(spec.alpha) != 3:
        raise ctx.error(f"{path}.alpha", f"expected three weights (α1, α2, α3); got {list(spec.alpha)}")
    if any(w < 1 for w in spec.widths):
        raise ctx.error(f"{path}.widths", f"every width must be >= 1, got {list(spec.widths)}")
    return spec


def _hyperparams(name: str, raw: Mapping, path: str, ctx: ConfigSource) -> dict:
    """Generator ``name``'s hyperparameters ``raw`` (as given), checked and built once."""
    import cfx.generators

    hp = sections.hyperparams(name, raw, path, ctx, coerce=False)
    try:
        cfx.generators.make(name, **hp)
    except (TypeError, ValueError) as e:
        raise ctx.error(path, f"cannot build generator {name!r}: {e}") from None
    return hp


def _generator(raw: Any, path: str, ctx: ConfigSource) -> GeneratorSpec:
    gc = sections.generator_item(raw, path, ctx, coerce=False)
    return gc.replace(hyperparams=_hyperparams(gc.name, gc.hyperparams, path, ctx))


def _check_realisation(dc: DataSpec, path: str, ctx: ConfigSource) -> None:
    """A replayed data set fixes its points: only the reference's own rows, test share and
    synthetic options (what ``preset: eccco-2024`` fills) may be stated next to it."""
    from cfx.data.julia_eccco2024 import ECCCO_2024_SETS, N_ROWS, other_options

    if dc.name not in ECCCO_2024_SETS:
        raise ctx.error(
            f"{path}.realisation", f"the eccco-2024 realisation has {', '.join(ECCCO_2024_SETS)}; got {dc.name!r}"
        )
    rows = N_ROWS[dc.name]
    if dc.n not in (None, rows):
        raise ctx.error(f"{path}.n", f"the eccco-2024 realisation of {dc.name} has {rows} rows; got n = {dc.n}")
    if dc.test_size != 0.2:
        raise ctx.error(f"{path}.test_size", f"the eccco-2024 realisation holds out 0.2; got {dc.test_size}")
    extra = other_options(dc.name, dict(dc.options))
    if extra:
        raise ctx.error(f"{path}.{extra[0]}", "the eccco-2024 realisation fixes the points: remove this option")


def _data(raw: Any, path: str, ctx: ConfigSource, models: tuple, generators: tuple) -> DataSpec:
    spec = sections.data_item(raw, path, ctx, spec=DataSpec)
    if spec.realisation is not None:
        _check_realisation(spec, path, ctx)
    by_model = {m.key: m for m in models}
    for label, changes in spec.models.items():
        if label not in by_model:
            raise ctx.error(f"{path}.models.{label}", f"no model labelled {label!r}{suggest(label, list(by_model))}")
        _model(
            {**by_model[label].model_dump(), **_mapping(changes, f"{path}.models.{label}", ctx)},
            f"{path}.models.{label}",
            ctx,
        )
    by_gen = {g.key: g for g in generators}
    for label, changes in spec.generators.items():
        if label not in by_gen:
            raise ctx.error(
                f"{path}.generators.{label}", f"no generator labelled {label!r}{suggest(label, list(by_gen))}"
            )
        g = by_gen[label]
        _hyperparams(
            g.name,
            {**g.hyperparams, **_mapping(changes, f"{path}.generators.{label}", ctx)},
            f"{path}.generators.{label}",
            ctx,
        )
    return spec

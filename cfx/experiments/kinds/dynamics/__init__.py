"""Endogenous recourse dynamics (``kind: dynamics``): data sets x models, every generator in
one shared-pool simulation (:func:`cfx.dynamics.simulate`, SPEC §6), repeated and seeded.

Config (``configs/dynamics.yaml``)::

    kind: dynamics
    data: [linearly_separable, overlapping, {name: circles}, {name: moons}]
    models: [{name: linear}, {name: mlp, widths: [32]}, {name: ensemble, n_members: 5}]
    generators: [generic, greedy, dice, {name: revise, vae_epochs: 100}]
    simulation: {rounds: 50, mu: 0.05, eval_every: 10, num_counterfactuals: 5, max_steps: 100}
    repetitions: 5

``preset: ard-2023`` selects the reference semantics of the paper's code
(AlgorithmicRecourseDynamics.jl 0.1.2 + CounterfactualExplanations.jl 0.1.5; :mod:`cfx.dynamics.reference`,
docs/dynamics.md): one-logit models trained batch-1, the CE.jl 0.1.5 search per generator, one pool
over every model × generator, n = round(μ·|pool|) (n = 0 skips the round), the reference metrics.

Records: ``sims/<data>/<model>/rep<r>/r<t>`` (every round's state and metrics, written by
``simulate``; an interrupted run resumes after the last saved round) and
``sims/<data>/<model>/done`` (the whole history). Report: ``rounds.csv`` (every metric of
every round), ``final.csv`` / ``summary.md`` (final-round mean ± sd over repetitions with
mean p-values) and ``figures/<data>_<metric>.png`` (a line per generator, a panel per model).
"""

from __future__ import annotations

import functools
from typing import Annotated, Mapping

import numpy as np
import pydantic

from cfx.evaluation.registry import headline_metrics
from cfx.experiments import runs, sections
from cfx.experiments.config import (
    Bool,
    ConfigError,
    Experiment,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Preset,
    Probability,
    RawConfig,
    Spec,
    Str,
    choice,
    plain,
)
from cfx.experiments.kinds import Kind, Report
from cfx.experiments.kinds.dynamics.report import FIGURE_METRICS, _figures, _final, _frames, _markdown, _skipped

__all__ = ["KIND", "DynamicsConfig", "FIGURE_METRICS", "TABLE_METRICS"]

TABLE_METRICS = headline_metrics("dynamics")  # summary.md's columns: the registry's "dynamics" headline table


class DataSpec(sections.DataSpec):
    """A data set (:class:`cfx.experiments.sections.DataSpec`) and ``flip_labels`` (binary
    y -> 1 − y: MLJ's ``make_circles`` labels the inner ring 0). ``realisation: ard-2023``: the
    points and labels of the paper's own draw of a synthetic set (linearly_separable, overlapping,
    circles, moons; 1000 rows, :func:`cfx.data.julia_mljbase.ard2023_synthetic`) instead of a
    cfx draw; the split (``test_size``, the seed) stays cfx's."""

    flip_labels: Bool = False
    realisation: Annotated[Str, choice(("ard-2023",))] | None = None


class ModelSpec(sections.ModelSpec):
    """A model (:class:`cfx.experiments.sections.ModelSpec`): ``epochs`` for the initial fit,
    ``retrain_epochs`` per round (warm-started). ``trainer: reference``:
    :class:`cfx.dynamics.reference.ReferenceTrainer` instead (one logit, Adam in fixed order; name
    linear, mlp or ensemble)."""

    name: Str = "linear"
    trainer: Annotated[Str, choice(("cfx", "reference"))] = "cfx"
    retrain_epochs: PositiveInt = 10

    def make_trainer(self):
        """The simulation's trainer for this model."""
        from cfx.dynamics.reference import REFERENCE_OPTIONS, ReferenceTrainer
        from cfx.dynamics.simulation import CfxTrainer

        if self.trainer == "reference":
            return ReferenceTrainer(
                self.name,
                self.epochs,
                self.retrain_epochs,
                self.learning_rate,
                widths=tuple(self.widths or (32,)),
                batch_size=self.batch_size,
                **{k: self.options[k] for k in REFERENCE_OPTIONS if k in self.options},
            )
        return CfxTrainer(self.name, self.fit_options(), self.epochs, self.retrain_epochs)

    def fit_options(self) -> dict:
        """``cfx.models.fit``'s options besides the epochs (the simulation sets those per fit)."""
        out = dict(batch_size=self.batch_size, learning_rate=self.learning_rate, **self.options)
        if self.widths is not None:
            out["widths"] = tuple(self.widths)
        return out


class GeneratorSpec(sections.GeneratorSpec):
    """A generator (:class:`cfx.experiments.sections.GeneratorSpec`) and ``latent_space``: search
    its objective in a VAE's latent space (CE.jl 0.1.5's ``latent_space = true``;
    :func:`cfx.generators.latent_space`): ``true``, or a mapping of the VAE's and the start's
    options (:data:`cfx.generators.latent.VAE_OPTIONS`, e.g. ``{vae_epochs: 100, latent_start: sample}``)."""

    latent_space: Bool | dict = False

    def latent_options(self) -> dict | None:
        """The VAE options of a latent-space generator; None when it searches the input space."""
        if self.latent_space is False:
            return None
        return {} if self.latent_space is True else dict(self.latent_space)


def _check_latent(generators, ctx) -> None:
    """``latent_space`` mappings name only VAE options, on generators that follow the gradient."""
    import cfx.generators
    from cfx.generators.latent import VAE_OPTIONS

    for i, g in enumerate(generators):
        opts = g.latent_options()
        if opts is None:
            continue
        bad = sorted(set(opts) - set(VAE_OPTIONS))
        if bad:
            raise ctx.error(
                f"generators[{i}].latent_space.{bad[0]}",
                f"not an option of the latent space; the options are {', '.join(VAE_OPTIONS)}",
            )
        try:
            cfx.generators.in_latent_space(cfx.generators.REGISTRY.get(g.name).cls)
        except ValueError as e:
            raise ctx.error(f"generators[{i}].latent_space", str(e)) from None


def _reference_options(model: ModelSpec) -> set:
    from cfx.dynamics.reference import REFERENCE_OPTIONS

    return set(REFERENCE_OPTIONS) if model.trainer == "reference" else set()


class SimulationSpec(Spec):
    """The recourse loop's settings (arguments of :func:`cfx.dynamics.simulate`)."""

    rounds: PositiveInt = 50
    mu: Probability = 0.05
    eval_every: PositiveInt = 10
    num_counterfactuals: PositiveInt = 5
    max_steps: PositiveInt = 100
    target: NonNegativeInt = 1
    pool: Annotated[Str, choice(("predicted", "label"))] = "predicted"
    pool_scope: Annotated[Str, choice(("model", "all"))] = "model"  # all: one pool over every model x generator
    draw: Annotated[Str, choice(("at_least_one", "round"))] = "at_least_one"
    metrics: dict[str, Str] = pydantic.Field(default_factory=dict)  # cfx.dynamics.MetricOptions fields
    n_permutations: NonNegativeInt = 1000
    length_scale: PositiveFloat = 0.5
    max_samples: PositiveInt | None = 1000
    grid_samples: PositiveInt = 1000
    generative_epochs: PositiveInt | None = None
    constraints: Annotated[Str, choice(("schema", "categorical"))] = "schema"  # categorical: one-hot groups only


def _check_realisation(dc: DataSpec, path: str, ctx) -> None:
    """A replayed data set fixes its points: only the geometry the replay already has (the
    preset's MLJ labels and moons' yshift) may be stated next to it."""
    if dc.realisation is None:
        return
    from cfx.data.julia_mljbase import ARD_2023_SETS
    from cfx.dynamics.reference import SYNTHETIC_FLIPPED, SYNTHETIC_OPTIONS

    if dc.name not in ARD_2023_SETS:
        raise ctx.error(
            f"{path}.realisation", f"the ard-2023 realisation has {', '.join(ARD_2023_SETS)}; got {dc.name!r}"
        )
    if dc.n not in (None, 1000):
        raise ctx.error(f"{path}.n", f"the ard-2023 realisation has 1000 rows; got n = {dc.n}")
    same = SYNTHETIC_OPTIONS.get(dc.name, {})
    extra = sorted(k for k, v in dc.options.items() if same.get(k) != v)
    if extra:
        raise ctx.error(f"{path}.{extra[0]}", "the ard-2023 realisation fixes the points: remove this option")
    if dc.flip_labels != (dc.name in SYNTHETIC_FLIPPED):
        raise ctx.error(
            f"{path}.flip_labels", "the ard-2023 realisation has MLJ's labels already (circles: inner ring 0)"
        )


class DynamicsConfig(Experiment):
    """data x models, all generators in one simulation each, ``repetitions`` seeded repetitions."""

    kind: Str = "dynamics"
    data: tuple[DataSpec, ...]
    models: tuple[ModelSpec, ...]
    generators: tuple[GeneratorSpec, ...]
    simulation: SimulationSpec = SimulationSpec()
    repetitions: PositiveInt = 5

    @classmethod
    def parse(cls, raw: RawConfig | Mapping) -> "DynamicsConfig":
        """Validate a raw ``kind: dynamics`` config (sections checked against their registries)."""
        ctx, d = sections.begin(cls, raw, data=DataSpec)
        d["models"] = sections.section_list(
            d, "models", ctx, functools.partial(sections.model_item, spec=ModelSpec, also=_reference_options)
        )
        d["generators"] = sections.section_list(
            d, "generators", ctx, functools.partial(sections.generator_item, spec=GeneratorSpec, coerce=False)
        )
        _check_latent(d["generators"], ctx)
        for i, dc in enumerate(d["data"]):
            _check_realisation(dc, f"data[{i}]", ctx)
        sim = d.get("simulation") or {}
        d["simulation"] = ctx.validate(SimulationSpec, sim, "simulation")
        from cfx.dynamics.metrics import MetricOptions
        from cfx.dynamics.reference import REFERENCE_MODELS, REFERENCE_OPTIONS

        try:
            MetricOptions(**dict(d["simulation"].metrics))
        except (TypeError, ValueError) as e:
            raise ctx.error("simulation.metrics", str(e)) from None
        if d["simulation"].pool_scope == "all" and len({m.trainer for m in d["models"]}) > 1:
            raise ctx.error(
                "models",
                "mixed model kinds in one cross-model pool (simulation.pool_scope: all): "
                + ", ".join(f"{m.key}: {m.trainer}" for m in d["models"])
                + "; give every model one trainer",
            )
        for i, m in enumerate(d["models"]):
            if m.trainer == "reference":
                if m.name not in REFERENCE_MODELS:
                    raise ctx.error(f"models[{i}].name", f"the reference trainer has {', '.join(REFERENCE_MODELS)}")
                extra = sorted(set(m.options) - set(REFERENCE_OPTIONS))
                if extra:
                    raise ctx.error(
                        f"models[{i}].{extra[0]}",
                        "not an option of the reference trainer (it takes epochs, "
                        f"retrain_epochs, learning_rate, batch_size, widths, {', '.join(REFERENCE_OPTIONS)})",
                    )
        return sections.finish(cls, ctx, d, raw)

    def to_dict(self) -> dict:
        flat = sections.flat
        return {
            "kind": self.kind,
            "name": self.name,
            "description": self.description,
            "data": [flat(x, "options") for x in self.data],
            "models": [flat(x, "options") for x in self.models],
            "generators": [flat(x, "hyperparams") for x in self.generators],
            "simulation": plain(self.simulation.model_dump()),
            "repetitions": self.repetitions,
            "preset": self.preset,
            "seed": self.seed,
            "output": self.output,
            "figures": self.figures,
        }

    def plan(self) -> str:
        """One line describing the run (its size and output folder) for ``cfx run``."""
        s = self.simulation
        return (
            f"{len(self.data)} data x {len(self.models)} models, {len(self.generators)} generators sharing a pool, "
            f"{s.rounds} rounds (mu={s.mu}) x {self.repetitions} repetitions -> {self.output_dir}"
        )


# ------------------------------------------------------------------------------ runner
def _flip(data):
    """Binary labels y -> 1 − y."""
    import dataclasses

    return dataclasses.replace(data, y=(1 - np.asarray(data.y)).astype(np.asarray(data.y).dtype))


def _replay(data, name: str):
    """The data set with the points and labels of the paper's draw (rows in its CSV's order)."""
    import dataclasses

    from cfx.data.julia_mljbase import ard2023_synthetic

    X, y = ard2023_synthetic(name)
    return dataclasses.replace(data, X=X.astype(np.float32), y=y.astype(np.asarray(data.y).dtype))


def _split(dc: DataSpec, cfg: DynamicsConfig):
    seed = runs.derive_seed(cfg.seed, None, "data", dc.key)
    if dc.realisation is not None:  # the replay has MLJ's labels: no flip on top
        return runs.load_split(dc, seed, functools.partial(_replay, name=dc.name))
    return runs.load_split(dc, seed, _flip if dc.flip_labels else None)


def _generators(cfg: DynamicsConfig, split=None) -> dict:
    """The generators; one searching the standardised space gets μ, σ of the whole data set
    (train ∪ test at t = 0), fixed for the run (CE.jl 0.1.5's ``data.dt``)."""
    import cfx.generators

    out = {}
    for g in cfg.generators:
        gen = cfx.generators.make(g.name, **dict(g.hyperparams))
        out[g.key] = gen if g.latent_options() is None else cfx.generators.latent_space(gen, **g.latent_options())
    if split is not None:
        full = np.concatenate([np.asarray(split[0].X), np.asarray(split[1].X)])
        out = {k: g.with_space(full) if g.space == "standardized" else g for k, g in out.items()}
    return out


def check(cfg: DynamicsConfig):
    """Build every generator and load every data set (bad hyperparameters or missing files fail here)."""
    from cfx.experiments.config import ConfigError

    try:
        _generators(cfg)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"a generator cannot be built: {e}", file=cfg.source, path="generators") from None
    return {dc.key: _split(dc, cfg) for dc in cfg.data}


def expected(cfg: DynamicsConfig) -> list[tuple[str, ...]]:
    return [("sims", dc.key, mc.key, "done") for dc in cfg.data for mc in cfg.models]


def _simulate(cfg: DynamicsConfig, dc, models, store, progress, prefix, split):
    import cfx.dynamics
    from cfx.dynamics.metrics import MetricOptions

    s = cfg.simulation
    train, test = split
    label = "/".join(prefix[1:])
    model = (
        models[0].make_trainer()
        if len(models) == 1 and s.pool_scope == "model"
        else {mc.key: mc.make_trainer() for mc in models}
    )
    seed_labels = (dc.key, models[0].key) if s.pool_scope == "model" else (dc.key, "all-models")
    return cfx.dynamics.simulate(
        train,
        test,
        _generators(cfg, split),
        model=model,
        **runs.spec_arguments(s, cfx.dynamics.simulate, exclude=("metrics",)),  # rounds, mu, ...: by name
        repetitions=cfg.repetitions,
        seed=runs.derive_seed(cfg.seed, None, "sim", *seed_labels),
        metrics=MetricOptions(**dict(s.metrics)),
        checkpoint=store,
        prefix=prefix,
        constraints_scope=s.constraints,
        on_round=lambda rep, t, rows: progress.status(f"{label} rep {rep} round {t}", log=t % 10 == 0),
    )


def run(cfg: DynamicsConfig, store, splits, progress) -> None:
    import time

    for dc in cfg.data:
        groups = [[mc] for mc in cfg.models] if cfg.simulation.pool_scope == "model" else [list(cfg.models)]
        for models in groups:
            dones = [("sims", dc.key, mc.key, "done") for mc in models]
            if all(store.done(d) for d in dones):
                continue
            began = time.perf_counter()
            shared = cfg.simulation.pool_scope == "all"
            prefix = ("sims", dc.key, "all-models" if shared else models[0].key)
            res = _simulate(cfg, dc, models, store, progress, prefix, splits[dc.key])
            seconds = time.perf_counter() - began
            for mc, done in zip(models, dones):
                mine = [r for r in res.history if r.get("model", mc.key) == mc.key]
                store.save(
                    done,
                    {
                        "dataset": dc.key,
                        "model": mc.key,
                        "history": mine,
                        "stopped": res.stopped,
                        "seconds": seconds / len(models),
                    },
                )
            progress.step(f"{dc.key}/{'+'.join(mc.key for mc in models)}", seconds)


# ------------------------------------------------------------------------------ report
def report(cfg: DynamicsConfig, store) -> Report:
    long, stopped, seconds = _frames(expected(cfg), store)
    final = _final(long)
    summary = _markdown(final, cfg.name, stopped, seconds, _skipped(long))
    store.write_table("rounds.csv", long)
    store.write_table("final.csv", final)
    store.write_text("summary.md", summary)
    figures = _figures(cfg, store, long) if cfg.figures else []
    return Report(summary=summary, out_dir=store.root, figures=figures, tables={"rounds": long, "final": final})


def show(store, raw: Mapping, metrics=None) -> str:
    path = store.root / "summary.md"
    if not path.exists():
        done = len(store.records(("sims",)))
        raise LookupError(f"unfinished run ({done} round records saved so far)")
    return path.read_text()


# ------------------------------------------------------------------------------ the ard-2023 preset
def _expand_ard(raw: dict) -> dict:
    from cfx.dynamics.reference import PresetConflict, expand_config

    try:
        return expand_config(raw)
    except PresetConflict as e:
        raise ConfigError(e.message, path=e.path) from None


ARD_2023 = Preset(
    name="ard-2023",
    description="Altmeyer et al. (SaTML 2023) as AlgorithmicRecourseDynamics.jl 0.1.2 + CounterfactualExplanations.jl "
    "0.1.5 ran it: CE.jl 0.1.5 search, batch-1 one-logit models, one pool over all systems",
    values={
        "simulation": {
            "pool": "predicted",
            "pool_scope": "all",
            "draw": "round",
            "num_counterfactuals": 5,
            "max_steps": 100,
            "target": 1,
            "length_scale": 0.5,
            "grid_samples": 1000,
            "generative_epochs": 10,
            "constraints": "categorical",
            "metrics": {
                "reference": "all",
                "domain_size": "common",
                "probabilities": "target",
                "grid": "redrawn",
                "f1": "macro",
                "perturbation": "per_element",
            },
        }
    },
    source="JuliaTrustworthyAI/AlgorithmicRecourseDynamics.jl v0.1.2, JuliaTrustworthyAI/CounterfactualExplanations.jl "
    "v0.1.5 (the Manifest of pat-alt/endogenous-macrodynamics-in-algorithmic-recourse at bce69ff / dd8ba1d, "
    "the commits that wrote paper/www/*_results.png)",
    expand=_expand_ard,
)

PRESETS = {"ard-2023": ARD_2023}
KIND = Kind.of(
    __name__,
    DynamicsConfig,
    unit="simulation",
    description="endogenous recourse dynamics: rounds of recourse + retraining, shift metrics",
)

"""The config sections experiment kinds share, each validated once against its registry.

- :class:`DataSpec` (``cfx.data.list_datasets()``), :class:`ModelSpec` (``cfx.models.list_models()``,
  its extra keys checked against ``cfx.models.fit``), :class:`GeneratorSpec` (``cfx.generators``,
  its extra keys typed from ``cfx.generators.hyperparameters(name)``), :class:`SearchSpec`,
  :class:`CalibrationSpec` and :class:`SamplingSpec`;
- the parse steps every kind's ``parse`` runs: :func:`begin` (top-level keys, the name),
  :func:`section_list` (``data: moons`` / a mapping / a list; unique labels), :func:`data_item`,
  :func:`model_item`, :func:`generator_item`, :func:`metric_names`, :func:`finish`; and :func:`flat`
  for ``to_dict`` (a section's extra keys back at its top level).

A kind extends a section by subclassing it (the dynamics' ``flip_labels``, CT's ``protected``)
and passes the subclass to the item parser.
"""

from __future__ import annotations

import functools
import inspect
from typing import Annotated, Any, Callable, Mapping

import pydantic

from cfx.experiments.config import (
    Bool,
    ConfigSource,
    Experiment,
    IntList,
    Label,
    PositiveFloat,
    PositiveInt,
    RawConfig,
    Spec,
    Str,
    StrList,
    UnitOpen,
    check_label,
    check_name,
    plain,
    suggest,
)
from cfx.experiments._hyperparams import hyperparams

__all__ = [
    "Entry",
    "DataSpec",
    "ModelSpec",
    "GeneratorSpec",
    "SearchSpec",
    "CalibrationSpec",
    "SamplingSpec",
    "GridExperiment",
    "begin",
    "finish",
    "section_list",
    "data_item",
    "model_item",
    "generator_item",
    "metric_names",
    "flat",
    "registry",
]


class Entry(Spec):
    """An entry of a list section: a registry ``name`` and an optional ``label`` that names it in
    records and tables (two entries of one name need distinct labels)."""

    name: Str
    label: Label | None = None

    @property
    def key(self) -> str:
        """The entry's name in records and tables: its label, else its name."""
        return self.label or self.name


class DataSpec(Entry):
    """One data set and its preprocessing.

    ``name`` is a ``cfx.data.list_datasets()`` name; ``n`` rows are generated (synthetic)
    or drawn (real; None: all rows); ``balance`` draws equal rows per class; the split is
    stratified with ``test_size``; ``standardize: true`` applies the data set's own policy
    (z-scores fitted on the training split for real tabular data and cats_dogs; unit-scale
    geometric sets and images stay raw), ``false`` never standardises. ``data_dir`` (else
    ``--data-dir``, else ``$CFX_DATA_DIR``) is where real data files are read from.
    ``label`` names the data set in tables (default ``name``). Any other key (``noise``,
    ``factor``, ...) is an option of a synthetic set, kept in ``options``.
    """

    n: PositiveInt | None = None
    test_size: UnitOpen = 0.2
    balance: Bool = False
    standardize: Bool = True
    data_dir: Str | None = None
    options: dict[str, Any] = pydantic.Field(default_factory=dict)


def _widths_positive(v):
    if v is not None and any(w < 1 for w in v):
        raise ValueError(f"every width must be >= 1, got {list(v)}")
    return v


class ModelSpec(Entry):
    """A model from ``cfx.models.list_models()`` and its training options.

    ``epochs``, ``batch_size``, ``learning_rate`` and ``widths`` are passed to
    ``cfx.models.fit``; any other key (``activation``, ``n_members``, ...) goes to
    ``options`` and is checked against ``fit``'s keyword arguments.
    """

    name: Str = "mlp"
    epochs: PositiveInt = 100
    batch_size: PositiveInt = 64
    learning_rate: PositiveFloat = 1e-3
    widths: Annotated[IntList | None, pydantic.AfterValidator(_widths_positive)] = None
    options: dict[str, Any] = pydantic.Field(default_factory=dict)

    def fit_kwargs(self) -> dict:
        """The keyword arguments of ``cfx.models.fit`` (and ``cfx.models.init``)."""
        kw = dict(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate)
        if self.widths is not None:
            kw["widths"] = tuple(self.widths)
        kw.update(self.options)
        return kw


class GeneratorSpec(Entry):
    """A generator from ``cfx.generators.REGISTRY`` and its hyperparameters.

    Every key besides ``name`` and ``label`` is a field of the generator (weights, step
    rule and search defaults such as ``threshold`` or ``num_counterfactuals``), checked
    against ``cfx.generators.hyperparameters(name)``.
    """

    hyperparams: dict[str, Any] = pydantic.Field(default_factory=dict)


class SearchSpec(Spec):
    """Call options of ``cfx.generate``: ``max_steps`` >= 1 and ``batch_size`` (None: all
    factuals in one chunk; else padded chunks of this many). Everything else about a search
    (threshold, K, start, convergence) is a field of the generator."""

    max_steps: PositiveInt = 100
    batch_size: PositiveInt | None = None


class CalibrationSpec(Spec):
    """Split-conformal calibration, used when a generator needs a calibrated classifier
    (:meth:`cfx.generators.Generator.needs`): the model is trained on ``1 − share`` of the
    training split and calibrated at miscoverage ``alpha`` on the rest (``cfx.models.calibrate``;
    the ECCCo reference: 50% / 50%, α = 0.05)."""

    share: UnitOpen = 0.5
    alpha: UnitOpen = 0.05


class SamplingSpec(Spec):
    """The model's conditional samples (unfaithfulness, ECCCo-L1): ``n_chains`` improper-SGLD
    chains for ``steps`` steps, the ``keep`` lowest-energy kept (SPEC §4: 50, 500, 25).

    ``mode``: ``per_class`` (cfx: drawn once per class and model, :func:`cfx.sampling.conditional_samples`)
    or ``per_target`` (the reference: drawn afresh for every counterfactual's target,
    :func:`cfx.sampling.per_target_samples`, starts fresh with probability ``fresh_prob``)."""

    n_chains: PositiveInt = 50
    steps: PositiveInt = 500
    keep: PositiveInt = 25
    mode: Str = "per_class"
    fresh_prob: UnitOpen = 0.05


class GridExperiment(Experiment):
    """The sections of a grid experiment (data sets x models x generators x runs, every cell
    one batched search scored with ``cfx.evaluate``): the benchmark's, and the ECCCo kind's
    (which narrows the data and model sections and adds its own)."""

    data: tuple[DataSpec, ...]
    models: tuple[ModelSpec, ...]
    generators: tuple[GeneratorSpec, ...]
    search: SearchSpec = SearchSpec()
    calibration: CalibrationSpec = CalibrationSpec()
    metrics: StrList | None = None
    n_factuals: PositiveInt = 100
    runs: PositiveInt = 1


# --------------------------------------------------------------------------------------
# Parse steps
# --------------------------------------------------------------------------------------


def registry(what: str) -> list | None:
    """Names cfx knows for ``what`` (data, models, generators, metrics); None if unavailable."""
    try:
        if what == "data":
            import cfx.data as m

            return list(m.list_datasets())
        if what == "models":
            import cfx.models as m

            return list(m.list_models())
        if what == "generators":
            import cfx.generators as m

            return list(m.REGISTRY) + list(m.ALIASES)
        if what == "metrics":
            import cfx.evaluation as m

            return list(m.list_metrics(m.EVALUATED))
    except (ImportError, AttributeError):
        return None
    raise ValueError(what)


def begin(
    cls, raw: RawConfig | Mapping, name: str | None = None, data: type[DataSpec] | None = None
) -> tuple[ConfigSource, dict]:
    """(context, top-level mapping) of a kind's raw config: a mapping whose every key is a
    field of ``cls``, its ``name`` defaulting to ``name`` or the file's stem; with ``data`` (a
    :class:`DataSpec` class) its ``data`` list parsed as well."""
    if not isinstance(raw, RawConfig):
        raw = RawConfig(dict(raw) if isinstance(raw, Mapping) else raw)
    ctx, d = raw.source(), raw.data
    if not isinstance(d, Mapping):
        raise ctx.error("", f"the top level must be a mapping, got {type(d).__name__}")
    d = dict(d)
    if "extends" in d:
        raise ctx.error("extends", "extends is only resolved when loading from a file (use load_config)")
    fields = list(cls.model_fields)
    for k in d:
        if k not in fields:
            raise ctx.error(str(k), f"unknown key{suggest(k, fields)}; allowed keys: {', '.join(fields)}")
    if d.get("name") is None:
        stem = name or (raw.file.stem if raw.file is not None else None)
        if stem is not None:
            d["name"] = stem
    if data is not None:
        d["data"] = section_list(d, "data", ctx, functools.partial(data_item, spec=data))
    return ctx, d


def finish(cls, ctx: ConfigSource, d: dict, raw: RawConfig | Mapping):
    """The validated config of the parsed top-level mapping ``d``, remembering its file."""
    cfg = ctx.validate(cls, d, "")
    file = raw.file if isinstance(raw, RawConfig) else None
    cfg._source = None if file is None else str(file)
    return cfg


def section_list(d: dict, key: str, ctx: ConfigSource, item: Callable[[Any, str, ConfigSource], Any]) -> tuple:
    """A list section (``data: moons``, a mapping, or a list of names and mappings), each item
    parsed by ``item(raw, path, ctx)``; two items with the same key are an error."""
    items = d.get(key)
    if items is None:
        raise ctx.error(key, "required key is missing (a name, a mapping or a list of them)")
    items = [items] if isinstance(items, (str, dict)) else items
    if not isinstance(items, list) or not items:
        raise ctx.error(key, f"expected a non-empty list, got {items!r}")
    out = tuple(item({"name": it} if isinstance(it, str) else it, f"{key}[{i}]", ctx) for i, it in enumerate(items))
    seen: dict[str, int] = {}
    for i, it in enumerate(out):
        if it.key in seen:
            raise ctx.error(
                f"{key}[{i}]",
                f"{it.key!r} appears twice (also {key}[{seen[it.key]}]); give one of them a distinct 'label'",
            )
        seen[it.key] = i
    return out


def _split(cls: type[Spec], raw: Any, path: str, ctx: ConfigSource, hidden: str) -> tuple[dict, dict]:
    """(keys that are fields of ``cls``, the other keys); ``hidden`` is never a config key."""
    if not isinstance(raw, Mapping):
        fields = [f for f in cls.model_fields if f != hidden]
        raise ctx.error(path, f"expected a mapping with keys {', '.join(fields)}; got {raw!r}")
    known = {k: v for k, v in raw.items() if k in cls.model_fields and k != hidden}
    return known, {k: v for k, v in raw.items() if k not in known}


def _signature_params(fn) -> tuple[set[str], bool]:
    """(keyword parameter names, accepts **kwargs)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return set(), True
    names = {p.name for p in sig.parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names, any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


def _synthetic_options(name: str) -> tuple[set[str], bool] | None:
    """Keyword options of a synthetic data set's generator; None when ``name`` is not synthetic."""
    try:
        import cfx.data as data

        if data.info(name).kind != "synthetic":
            return None
        from cfx.data import synthetic

        fn = synthetic.MAKERS[data.info(name).name][0]
    except (ImportError, AttributeError, KeyError, ValueError):
        return set(), True
    names, var_kw = _signature_params(fn)
    return names - {"n", "seed"}, var_kw


def data_item(raw: Any, path: str, ctx: ConfigSource, spec: type[DataSpec] = DataSpec) -> DataSpec:
    """One data set: ``spec``'s keys validated, its name checked against the registry, any other
    key an option of a synthetic set (checked against its generator's signature)."""
    known, extra = _split(spec, raw, path, ctx, "options")
    check_name(known.get("name"), registry("data"), "data set", f"{path}.name", ctx)
    dc = ctx.validate(spec, known, path)
    if dc.label is None:
        check_label(dc.name, f"{path}.name", ctx)
    fixed = [f for f in spec.model_fields if f != "options"]
    if extra:
        opts = _synthetic_options(dc.name)
        for k in extra:
            if opts is None:
                raise ctx.error(
                    f"{path}.{k}",
                    f"unknown key{suggest(k, fixed)}; allowed keys: {', '.join(fixed)} "
                    "(only synthetic data sets take extra options)",
                )
            names, var_kw = opts
            if not var_kw and k not in names:
                allowed = fixed + sorted(names)
                raise ctx.error(f"{path}.{k}", f"unknown key{suggest(k, allowed)}; allowed keys: {', '.join(allowed)}")
    return dc.replace(options=dict(extra))


# the experiment sets these itself (seed per run, progress bars, fresh init, a Classifier
# back); a loss function or its extra state is code, not a config value
_RESERVED_MODEL_OPTIONS = {
    "dataset",
    "data",
    "model",
    "seed",
    "progress",
    "init_params",
    "return_state",
    "loss",
    "extra",
}


def _check_model_options(entry, mc, extra: dict, path: str, ctx: ConfigSource) -> None:
    """A registered model's own options (``ModelEntry.options``) through its ``check``; the error
    names the option at fault when its message starts with it."""
    opts = {k: v for k, v in extra.items() if k in entry.options}
    try:
        entry.check(**opts)
    except ValueError as e:
        key = next((k for k in entry.options if str(e).startswith(f"{k} ")), "")
        raise ctx.error(f"{path}.{key}" if key else path, str(e)) from None


def model_item(
    raw: Any,
    path: str,
    ctx: ConfigSource,
    spec: type[ModelSpec] = ModelSpec,
    also: Callable[[Any], set] = lambda item: set(),
    names: tuple[str, ...] = (),
    check: Callable[[Any, dict, str, ConfigSource], None] | None = None,
) -> ModelSpec:
    """One model: ``spec``'s keys validated, its name checked against the registry (and the
    kind's own ``names``), any other key a keyword of ``cfx.models.fit`` (or in ``also(item)``);
    ``check(item, extra keys, path, ctx)`` checks what only the kind knows, before training."""
    known, extra = _split(spec, raw, path, ctx, "options")
    mc = ctx.validate(spec, known, path)
    models = registry("models")
    check_name(mc.name, None if models is None else [*models, *names], "model", f"{path}.name", ctx)
    if mc.label is None:
        check_label(mc.name, f"{path}.name", ctx)
    if extra:
        try:
            import cfx.models as models

            names, _ = _signature_params(models.fit)  # its **options are a model's own: entry.options
            var_kw, entry = False, models.MODELS.get(mc.name) if mc.name in models.MODELS else None
        except (ImportError, AttributeError):
            names, var_kw, entry = set(), True, None
        names = (names - _RESERVED_MODEL_OPTIONS) | set(also(mc)) | set(entry.options if entry else ())
        if entry is not None and entry.check is not None:  # the model's own options, before training
            _check_model_options(entry, mc, extra, path, ctx)
        if check is not None:
            check(mc, extra, path, ctx)
        if not var_kw:
            allowed = sorted(names | (set(spec.model_fields) - {"options"}))
            for k in extra:
                if k not in names:
                    raise ctx.error(
                        f"{path}.{k}", f"unknown model option{suggest(k, allowed)}; allowed: {', '.join(allowed)}"
                    )
    return mc.replace(options=dict(extra))


def generator_item(
    raw: Any, path: str, ctx: ConfigSource, spec: type[GeneratorSpec] = GeneratorSpec, coerce: bool = True
) -> GeneratorSpec:
    """One generator: its name checked against the registry, every other key one of its
    hyperparameters (:func:`hyperparams`; ``coerce`` as there)."""
    known, extra = _split(spec, raw, path, ctx, "hyperparams")
    names = registry("generators")
    check_name(known.get("name"), names, "generator", f"{path}.name", ctx)
    gc = ctx.validate(spec, known, path)
    if gc.label is None:
        check_label(gc.name, f"{path}.name", ctx)
    if "search" in extra and isinstance(extra["search"], Mapping):
        keys = ", ".join(f"{k}: {v!r}" for k, v in extra["search"].items())
        raise ctx.error(
            f"{path}.search",
            "a generator has no search section any more: set its keys on the "
            f"generator itself, e.g. {{name: {gc.name}, {keys}}}",
        )
    if names is None:
        return gc.replace(hyperparams=dict(extra))
    return gc.replace(hyperparams=hyperparams(gc.name, extra, path, ctx, coerce))


def metric_names(d: dict, ctx: ConfigSource) -> None:
    """``metrics``: None, or a non-empty list of metrics ``cfx.evaluate`` computes."""
    metrics = d.get("metrics")
    if not isinstance(metrics, list):
        return  # None, or not a list: the schema's type check says so
    if not metrics:
        raise ctx.error("metrics", "expected a non-empty list of metric names (or leave it out for all)")
    avail = registry("metrics")
    for i, m in enumerate(metrics):
        check_name(m, avail, "metric", f"metrics[{i}]", ctx)


def flat(spec: Spec, extra: str | None) -> dict:
    """A section's mapping in the input schema: its ``extra`` keys (options, hyperparameters) at the top."""
    out = {k: plain(v) for k, v in spec if k != extra}
    if extra:
        out.update(plain(dict(getattr(spec, extra))))
    return out

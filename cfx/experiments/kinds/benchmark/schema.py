"""The benchmark's config (``kind: benchmark``): :class:`BenchmarkConfig` and its sections
(data sets, models, generators, search) and their validation against cfx's registries.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Annotated, Any, Mapping

import pydantic

from cfx.experiments.config import (Bool, Context, Experiment, Float, IntList, Label, NonNegativeInt, Number,
                                    PositiveFloat, PositiveInt, Probability, RawConfig, Spec, Str, StrList, UnitOpen,
                                    check_label, check_name, choice, plain, suggest)

__all__ = ["BenchmarkConfig", "DataConfig", "ModelConfig", "GeneratorConfig", "SearchConfig", "CalibrationConfig"]


# --------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------


class DataConfig(Spec):
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

    name: Str
    n: PositiveInt | None = None
    test_size: UnitOpen = 0.2
    balance: Bool = False
    standardize: Bool = True
    data_dir: Str | None = None
    label: Label | None = None
    options: dict[str, Any] = pydantic.Field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.label or self.name


def _widths_positive(v):
    if v is not None and any(w < 1 for w in v):
        raise ValueError(f"every width must be >= 1, got {list(v)}")
    return v


class ModelConfig(Spec):
    """A model from ``cfx.models.list_models()`` and its training options.

    ``epochs``, ``batch_size``, ``learning_rate`` and ``widths`` are passed to
    ``cfx.models.fit``; any other key (``activation``, ``n_members``, ...) goes to
    ``options`` and is checked against ``fit``'s keyword arguments. ``name: laplace`` trains
    ``base`` (mlp or linear) and wraps it in ``cfx.models.laplace`` with the options
    ``hessian``, ``predictive``, ``prior_precision``, ``n_samples``, ... (``cfx.models.fit_laplace``).
    """

    name: Str = "mlp"
    epochs: PositiveInt = 100
    batch_size: PositiveInt = 64
    learning_rate: PositiveFloat = 1e-3
    widths: Annotated[IntList | None, pydantic.AfterValidator(_widths_positive)] = None
    label: Label | None = None
    options: dict[str, Any] = pydantic.Field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.label or self.name

    def fit_kwargs(self) -> dict:
        kw = dict(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate)
        if self.widths is not None:
            kw["widths"] = tuple(self.widths)
        kw.update(self.options)
        return kw


class GeneratorConfig(Spec):
    """A generator from ``cfx.generators.REGISTRY`` and its hyperparameters.

    Every key besides ``name`` and ``label`` is a field of the generator (weights, step
    rule and search defaults such as ``threshold`` or ``num_counterfactuals``), checked
    against ``cfx.generators.hyperparameters(name)``.
    """

    name: Str
    label: Label | None = None
    hyperparams: dict[str, Any] = pydantic.Field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.label or self.name


class SearchConfig(Spec):
    """Call options of ``cfx.generate``: ``max_steps`` >= 1 and ``batch_size`` (None: all
    factuals in one chunk; else padded chunks of this many). Everything else about a search
    (threshold, K, init, convergence) is a field of the generator."""

    max_steps: PositiveInt = 100
    batch_size: PositiveInt | None = None


class CalibrationConfig(Spec):
    """Split-conformal calibration, used only when a generator needs a calibrated classifier
    (ECCCo and its variants with a set-size term): the model is then trained on ``1 − share``
    of the training split and calibrated at miscoverage ``alpha`` on the rest
    (``cfx.models.calibrate``); every generator of that (data set, model) uses it."""

    share: UnitOpen = 0.5
    alpha: UnitOpen = 0.05


# keys that moved from the experiment's search section onto each generator
_MOVED_TO_GENERATOR = ("threshold", "num_counterfactuals", "init", "convergence", "min_steps", "init_scale")
_SECTIONS = ("data", "models", "generators")


class BenchmarkConfig(Experiment):
    """The grid data x models x generators x runs and how to score it.

    ``n_factuals`` factuals per (data set, model, run) are drawn from the test split among
    points the model predicts as a non-target class; ``metrics`` (None: every metric of
    ``cfx.evaluate``) are computed by ``cfx.evaluate``; run r uses seeds derived from
    ``(seed, r, labels)``. ``output`` is the results folder (default ``results/<name>``);
    ``figures`` turns the PNG figures on or off.
    """

    kind: Str = "benchmark"
    data: tuple[DataConfig, ...]
    models: tuple[ModelConfig, ...]
    generators: tuple[GeneratorConfig, ...]
    search: SearchConfig = SearchConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    metrics: StrList | None = None
    n_factuals: PositiveInt = 100
    runs: PositiveInt = 1

    @classmethod
    def parse(cls, raw: RawConfig | Mapping, *, name: str | None = None) -> "BenchmarkConfig":
        """Validate a merged mapping (or a :class:`RawConfig`) into a BenchmarkConfig.

        Raises :class:`ConfigError` naming the file, the key path and the allowed values.
        """
        if not isinstance(raw, RawConfig):
            raw = RawConfig(dict(raw) if isinstance(raw, Mapping) else raw)
        ctx = raw.context()
        d = raw.data
        if not isinstance(d, Mapping):
            raise ctx.error("", f"the top level must be a mapping, got {type(d).__name__}")
        d = _normalise_sections(dict(d))
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
        d["data"] = _validate_list(d, "data", ctx, _validate_data, _registry("data"))
        d["models"] = _validate_list(d, "models", ctx, _validate_model, _registry("models"))
        d["generators"] = _validate_list(d, "generators", ctx, _validate_generator, _registry("generators"))
        d["search"] = ctx.validate(SearchConfig, {} if d.get("search") is None else d["search"], "search", hints={
            k: f"{k} is a generator option now: set it on each generator that needs it (e.g. "
               f"generators[0].{k}); search keeps only the call options {', '.join(SearchConfig.model_fields)}"
            for k in _MOVED_TO_GENERATOR})
        d["calibration"] = ctx.validate(CalibrationConfig, d.get("calibration") or {}, "calibration")
        metrics = d.get("metrics")
        if metrics is not None:
            if isinstance(metrics, list) and not metrics:
                raise ctx.error("metrics", "expected a non-empty list of metric names (or leave it out for all)")
            if isinstance(metrics, list):
                avail = _registry("metrics")
                for i, m in enumerate(metrics):
                    check_name(m, avail, "metric", f"metrics[{i}]", ctx)
        cfg = ctx.validate(cls, d, "")
        cfg._source = None if raw.file is None else str(raw.file)
        return cfg

    # -- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A plain mapping in the input schema: ``BenchmarkConfig.parse(c.to_dict()) == c``."""
        def flat(spec: Spec, extra: str) -> dict:
            out = {k: plain(v) for k, v in spec if k != extra}
            out.update(plain(dict(getattr(spec, extra))))
            return out

        return {
            "kind": self.kind,
            "name": self.name,
            "description": self.description,
            "data": [flat(x, "options") for x in self.data],
            "models": [flat(x, "options") for x in self.models],
            "generators": [flat(x, "hyperparams") for x in self.generators],
            "search": plain(self.search.model_dump()),
            "calibration": plain(self.calibration.model_dump()),
            "metrics": plain(self.metrics),
            "n_factuals": self.n_factuals,
            "runs": self.runs,
            "seed": self.seed,
            "output": self.output,
            "figures": self.figures,
        }

    def identity(self) -> dict:
        d = super().identity()
        for item in d["data"]:
            item.pop("data_dir", None)
        return d

    def plan(self) -> str:
        n = len(self.data) * len(self.models) * len(self.generators) * self.runs
        return (f"grid: {len(self.data)} data x {len(self.models)} models x {len(self.generators)} generators x "
                f"{self.runs} runs = {n} cells -> {self.output_dir}")


def _normalise_sections(raw: dict) -> dict:
    """``data: moons`` / ``data: {...}`` / ``generators: [generic, {...}]`` -> lists of mappings."""
    for sec in _SECTIONS:
        items = raw.get(sec)
        if items is None:
            continue
        if isinstance(items, (str, dict)):
            items = [items]
        if isinstance(items, list):
            raw[sec] = [{"name": it} if isinstance(it, str) else it for it in items]
    return raw


def _registry(what: str):
    """Names (for generators: name -> hyperparameters function) known to cfx; None if unavailable."""
    try:
        if what == "data":
            import cfx.data as m
            return list(m.list_datasets())
        if what == "models":
            import cfx.models as m
            return [*m.list_models(), "laplace"]  # laplace: a base model + cfx.models.laplace (fit_laplace)
        if what == "generators":
            import cfx.generators as m
            return list(m.REGISTRY)
        if what == "metrics":
            import cfx.evaluation as m
            return list(m.list_metrics(m.EVALUATED))
    except (ImportError, AttributeError):
        return None
    raise ValueError(what)


def _validate_list(raw: dict, key: str, ctx: Context, fn, registry) -> tuple:
    items = raw.get(key)
    if items is None:
        raise ctx.error(key, "required key is missing (a name, a mapping or a list of them)")
    if not isinstance(items, list) or not items:
        raise ctx.error(key, f"expected a non-empty list, got {items!r}")
    out = tuple(fn(it, f"{key}[{i}]", ctx, registry) for i, it in enumerate(items))
    seen: dict[str, int] = {}
    for i, it in enumerate(out):
        if it.key in seen:
            raise ctx.error(f"{key}[{i}]", f"{it.key!r} appears twice (also {key}[{seen[it.key]}]); "
                                           "give one of them a distinct 'label'")
        seen[it.key] = i
    return out


def _split(cls: type[Spec], raw: Any, path: str, ctx: Context, hidden: str) -> tuple[dict, dict]:
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
        fn = synthetic.GENERATORS[data.info(name).name][0]
    except (ImportError, AttributeError, KeyError, ValueError):
        return set(), True
    names, var_kw = _signature_params(fn)
    return names - {"n", "seed"}, var_kw


def _validate_data(raw: Any, path: str, ctx: Context, registry) -> DataConfig:
    known, extra = _split(DataConfig, raw, path, ctx, "options")
    check_name(known.get("name"), registry, "data set", f"{path}.name", ctx)
    dc = ctx.validate(DataConfig, known, path)
    if dc.label is None:
        check_label(dc.name, f"{path}.name", ctx)
    fixed = [f for f in DataConfig.model_fields if f != "options"]
    if extra:
        opts = _synthetic_options(dc.name)
        for k in extra:
            if opts is None:
                raise ctx.error(f"{path}.{k}", f"unknown key{suggest(k, fixed)}; allowed keys: {', '.join(fixed)} "
                                               "(only synthetic data sets take extra options)")
            names, var_kw = opts
            if not var_kw and k not in names:
                allowed = fixed + sorted(names)
                raise ctx.error(f"{path}.{k}", f"unknown key{suggest(k, allowed)}; allowed keys: {', '.join(allowed)}")
    return dc.replace(options=dict(extra))


# the experiment sets these itself (seed per run, progress bars, fresh init, a Classifier
# back); a loss function or its extra state is code, not a config value
_RESERVED_MODEL_OPTIONS = {"dataset", "data", "model", "seed", "progress", "init_params", "return_state", "loss",
                           "extra"}


def _validate_model(raw: Any, path: str, ctx: Context, registry) -> ModelConfig:
    known, extra = _split(ModelConfig, raw, path, ctx, "options")
    mc = ctx.validate(ModelConfig, known, path)
    check_name(mc.name, registry, "model", f"{path}.name", ctx)
    if mc.label is None:
        check_label(mc.name, f"{path}.name", ctx)
    if extra:
        try:
            import cfx.models as models
            names, var_kw = _signature_params(models.fit)
            if mc.name == "laplace":
                from cfx.models.laplace import LAPLACE_OPTIONS

                names |= {"base", *LAPLACE_OPTIONS}
                _check_laplace(extra, path, ctx)
        except (ImportError, AttributeError):
            names, var_kw = set(), True
        if not var_kw:
            fixed = set(ModelConfig.model_fields) - {"options"}
            allowed = sorted((names - _RESERVED_MODEL_OPTIONS) | fixed)
            for k in extra:
                if k not in names or k in _RESERVED_MODEL_OPTIONS:
                    raise ctx.error(f"{path}.{k}", f"unknown model option{suggest(k, allowed)}; allowed: "
                                                   f"{', '.join(allowed)}")
    return mc.replace(options=dict(extra))


def _check_laplace(extra: dict, path: str, ctx: Context) -> None:
    """``model: laplace``: its base and Laplace options, checked before anything is trained."""
    from cfx.models.laplace import LAPLACE_OPTIONS, check_laplace_options

    opts = {k: v for k, v in extra.items() if k in LAPLACE_OPTIONS or k == "base"}
    try:
        check_laplace_options(**opts)
    except ValueError as e:
        key = next((k for k in ("base", "hessian", "predictive") if k in str(e).split(" ")[0]), "")
        raise ctx.error(f"{path}.{key}" if key else path, str(e)) from None


def _loader(module: str, attr: str):
    def load():
        try:
            import importlib
            return tuple(getattr(importlib.import_module(module), attr))
        except (ImportError, AttributeError):
            return None
    return load


def _non_negative(v):
    if not v >= 0:
        raise ValueError(f"must be >= 0, got {v!r}")
    return v


# Search defaults and step-rule options every generator has: their own ranges and choices.
_SHARED_FIELDS: dict[str, Any] = {
    "threshold": Probability,
    "num_counterfactuals": PositiveInt,
    "min_steps": NonNegativeInt,
    "init_scale": Annotated[Float, pydantic.AfterValidator(_non_negative)],
    "learning_rate": PositiveFloat,
    "init": Annotated[Str, choice(_loader("cfx.generators", "INITS"))],
    "convergence": Annotated[Str, choice(_loader("cfx.generators", "CONVERGENCE"))],
    "optimizer": Annotated[Str, choice(_loader("cfx.generators", "OPTIMIZERS"))],
    "yloss": Annotated[Str, choice(_loader("cfx.losses", "YLOSSES"))],
}


def _numbers(v):
    """A number or a (nested) list of numbers (array-valued hyperparameters)."""
    ok = (isinstance(v, (int, float)) and not isinstance(v, bool)) or (
        isinstance(v, (list, tuple)) and all((isinstance(x, (int, float)) and not isinstance(x, bool))
                                             or isinstance(x, (list, tuple)) for x in v))
    if not ok:
        raise ValueError(f"expected a number (or list of numbers), got {v!r}")
    return v


def _list_or_number(v):
    if not isinstance(v, (list, tuple, int, float)) or isinstance(v, bool):
        raise ValueError(f"expected a list or a number, got {v!r}")
    return v


def _field_type(key: str, default: Any):
    """The config type of a generator hyperparameter, from its name or its default's type."""
    if key in _SHARED_FIELDS:
        return _SHARED_FIELDS[key]
    if default is None or default is dataclasses.MISSING:
        return Any
    if isinstance(default, bool):
        return Bool
    if isinstance(default, int):
        return Number  # a weight may default to 1 and be set to 0.5
    if isinstance(default, float):
        return Float
    if isinstance(default, str):
        return Str
    if isinstance(default, (tuple, list)):
        return Annotated[Any, pydantic.BeforeValidator(_list_or_number)]
    if type(default).__module__.split(".")[0] in ("numpy", "jax", "jaxlib"):
        return Annotated[Any, pydantic.BeforeValidator(_numbers)]
    return Any


@functools.lru_cache(maxsize=None)
def _hyperparameter_model(name: str) -> tuple[type[pydantic.BaseModel], tuple[str, ...]]:
    """A pydantic model of the settable keys of generator ``name`` (and their names)."""
    import cfx.generators

    defaults = cfx.generators.hyperparameters(name)
    fields = {k: (_field_type(k, v) | None, None) for k, v in defaults.items()}
    model = pydantic.create_model(f"{name}_hyperparameters", __config__=pydantic.ConfigDict(extra="forbid"),
                                  **fields)
    return model, tuple(sorted(defaults))


def _validate_generator(raw: Any, path: str, ctx: Context, registry) -> GeneratorConfig:
    known, extra = _split(GeneratorConfig, raw, path, ctx, "hyperparams")
    check_name(known.get("name"), registry, "generator", f"{path}.name", ctx)
    gc = ctx.validate(GeneratorConfig, known, path)
    if gc.label is None:
        check_label(gc.name, f"{path}.name", ctx)
    if "search" in extra and isinstance(extra["search"], Mapping):
        keys = ", ".join(f"{k}: {v!r}" for k, v in extra["search"].items())
        raise ctx.error(f"{path}.search", "a generator has no search section any more: set its keys on the "
                                          f"generator itself, e.g. {{name: {gc.name}, {keys}}}")
    if registry is None:
        return gc.replace(hyperparams=dict(extra))
    model, keys = _hyperparameter_model(gc.name)
    allowed = [*keys, "label"]
    hp = ctx.validate(model, extra, path, unknown=f"unknown hyperparameter of generator {gc.name!r}",
                      allowed=allowed, listing="allowed")
    return gc.replace(hyperparams=hp.model_dump(exclude_unset=True))

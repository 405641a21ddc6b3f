"""Experiment configs: YAML parsed once, at the edge, into typed frozen dataclasses.

A config file names the data sets, models, generators, search options and metrics of a
benchmark grid (data x models x generators x runs). It is read with ``yaml.safe_load``,
merged with the file it ``extends`` (deep merge, child wins), overridden by
``--set key.path=value`` pairs, and validated into an :class:`ExperimentConfig`. Unknown
keys, wrong types and out-of-range values raise :class:`ConfigError` naming the file, the
key path (``generators[0].lamda``), the allowed values and a close match ("did you mean
'cost'?"). Nothing from here enters jitted code: the benchmark turns the config into data
sets, classifiers and generator PyTrees before any search.

Example config::

    name: quickstart
    data: {name: moons, n: 1000}
    models: [{name: mlp, epochs: 50, widths: [32, 32]}]
    generators:
      - generic
      - {name: wachter, cost: 0.1}
      - {name: dice, search: {num_counterfactuals: 3}}
    search: {max_steps: 100, threshold: 0.5}
    n_factuals: 100
    seed: 0

Example use::

    cfg = cfx.experiment.load_config("configs/quickstart.yaml", overrides=["seed=1"])
    out = cfx.experiment.run(cfg, out="results/qs")
    print(out.summary)
"""

from __future__ import annotations

import collections.abc
import copy
import dataclasses
import difflib
import inspect
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

__all__ = [
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "GeneratorConfig",
    "SearchConfig",
    "ExperimentConfig",
    "load_config",
    "parse_config",
    "parse_overrides",
    "config_to_dict",
    "dump_config",
    "run",
]


class ConfigError(ValueError):
    """A config that cannot be used: names the file, the key path and what was expected."""

    def __init__(self, message: str, *, file: str | os.PathLike | None = None, path: str | None = None):
        self.file = None if file is None else str(file)
        self.path = path
        self.message = message
        where = ": ".join(p for p in (self.file, path) if p)
        super().__init__(f"{where}: {message}" if where else message)


# Names researchers reach for when they mean a generator's penalty weight.
_SYNONYMS = {"lambda": "cost", "lamda": "cost", "lam": "cost", "λ": "cost", "weight": "cost", "lr": "learning_rate",
             "eta": "learning_rate", "steps": "max_steps", "k": "num_counterfactuals", "tau": "threshold"}

_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")


def _suggest(key: str, allowed: Sequence[str]) -> str:
    """' (did you mean 'x'?)' for a close match or a known synonym, else ''."""
    allowed = list(allowed)
    guesses = difflib.get_close_matches(str(key), allowed, n=2, cutoff=0.6)
    syn = _SYNONYMS.get(str(key).lower())
    if syn in allowed and syn not in guesses:
        guesses.append(syn)
    if not guesses:
        return ""
    return " (did you mean " + " or ".join(repr(g) for g in guesses) + "?)"


# --------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------


def _positive(v):
    return None if v > 0 else "must be > 0"


def _non_negative(v):
    return None if v >= 0 else "must be >= 0"


def _open_unit(v):
    return None if 0.0 < v < 1.0 else "must be in (0, 1)"


def _probability(v):
    return None if 0.0 < v <= 1.0 else "must be in (0, 1]"


def _check(fn):
    return {"check": fn}


def _choices(loader):
    """A check against a tuple of allowed strings, read lazily from the module that owns them."""
    def check(v):
        allowed = loader()
        if allowed is None or v in allowed:
            return None
        return f"must be one of {', '.join(map(repr, allowed))}{_suggest(v, allowed)}"
    return {"check": check}


def _inits():
    try:
        from cfx.search import INITS
        return tuple(INITS)
    except ImportError:
        return None


def _convergence_rules():
    try:
        from cfx.generators.base import CONVERGENCE
        return tuple(CONVERGENCE)
    except ImportError:
        return None


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """One data set and its preprocessing.

    ``name`` is a ``cfx.data.list_datasets()`` name; ``n`` rows are generated (synthetic)
    or drawn (real; None: all rows); ``balance`` draws equal rows per class; the split is
    stratified with ``test_size``; ``standardize: true`` applies the data set's own policy
    (z-scores fitted on the training split for real tabular data and cats_dogs; unit-scale
    geometric sets and images stay raw), ``false`` never standardises. ``data_dir`` (else
    ``--data-dir``, else ``$CFX_DATA_DIR``) is where real data files are read from.
    ``label`` names the data set in tables (default ``name``). Any other key (``noise``,
    ``factor``, ...) is a generator option of a synthetic set, kept in ``options``.
    """

    name: str
    n: int | None = dataclasses.field(default=None, metadata=_check(_positive))
    test_size: float = dataclasses.field(default=0.2, metadata=_check(_open_unit))
    balance: bool = False
    standardize: bool = True
    data_dir: str | None = None
    label: str | None = None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.label or self.name


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A model from ``cfx.models.list_models()`` and its training options.

    ``epochs``, ``batch_size``, ``learning_rate`` and ``widths`` are passed to
    ``cfx.models.fit``; any other key (``activation``, ``n_members``, ...) goes to
    ``options`` and is checked against ``fit``'s keyword arguments.
    """

    name: str = "mlp"
    epochs: int = dataclasses.field(default=100, metadata=_check(_positive))
    batch_size: int = dataclasses.field(default=64, metadata=_check(_positive))
    learning_rate: float = dataclasses.field(default=1e-3, metadata=_check(_positive))
    widths: tuple[int, ...] | None = None
    label: str | None = None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.label or self.name

    def fit_kwargs(self) -> dict:
        kw = dict(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate)
        if self.widths is not None:
            kw["widths"] = tuple(self.widths)
        kw.update(self.options)
        return kw


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Options of ``cfx.generate``: ``max_steps`` >= 1, decision ``threshold`` tau in (0, 1],
    ``num_counterfactuals`` K >= 1, ``init`` (identity | noise) and ``convergence`` rule
    (threshold | generator_conditions | max_steps; None: the generator's default), and
    ``batch_size`` (None: all factuals in one chunk; else padded chunks of this many)."""

    max_steps: int = dataclasses.field(default=100, metadata=_check(_positive))
    threshold: float = dataclasses.field(default=0.5, metadata=_check(_probability))
    num_counterfactuals: int = dataclasses.field(default=1, metadata=_check(_positive))
    init: str | None = dataclasses.field(default=None, metadata=_choices(_inits))
    convergence: str | None = dataclasses.field(default=None, metadata=_choices(_convergence_rules))
    batch_size: int | None = dataclasses.field(default=None, metadata=_check(_positive))


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """A generator from ``cfx.generators.REGISTRY``, its hyperparameters and search overrides.

    Every key besides ``name``, ``label`` and ``search`` is a hyperparameter, checked against
    the generator's dataclass fields (and ``from_data`` arguments). ``search`` overrides the
    experiment's search options for this generator only (e.g. DiCE's K > 1); precedence:
    experiment ``search`` < ``cfx.generators.search_defaults(name)`` < this ``search``.
    """

    name: str
    hyperparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    search: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    label: str | None = None

    @property
    def key(self) -> str:
        return self.label or self.name


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment: the grid data x models x generators x runs and how to score it.

    ``n_factuals`` factuals per (data set, model, run) are drawn from the test split among
    points the model predicts as a non-target class; ``metrics`` (None: all of
    ``cfx.evaluation.list_metrics()``) are computed by ``cfx.evaluate``; run r uses seeds
    derived from ``(seed, r, labels)``. ``output`` is the results folder (default
    ``results/<name>``); ``figures`` turns the PNG figures on or off.
    """

    name: str
    data: tuple[DataConfig, ...]
    models: tuple[ModelConfig, ...]
    generators: tuple[GeneratorConfig, ...]
    search: SearchConfig = SearchConfig()
    metrics: tuple[str, ...] | None = None
    n_factuals: int = dataclasses.field(default=100, metadata=_check(_positive))
    runs: int = dataclasses.field(default=1, metadata=_check(_positive))
    seed: int = dataclasses.field(default=0, metadata=_check(_non_negative))
    output: str | None = None
    figures: bool = True
    description: str = ""
    # the file it was read from (for error messages); not part of the experiment
    source: str | None = dataclasses.field(default=None, compare=False, repr=False, metadata={"internal": True})

    @property
    def output_dir(self) -> Path:
        return Path(self.output) if self.output else Path("results") / self.name

    def replace(self, **changes) -> "ExperimentConfig":
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------------------
# Loading: YAML, extends, overrides
# --------------------------------------------------------------------------------------


def _read_yaml(path: Path, *, referenced_by: str | None = None) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}", file=referenced_by, path="extends" if referenced_by else None)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"not valid YAML: {e}", file=path) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"the top level must be a mapping of keys, got {type(raw).__name__}", file=path)
    return raw


def _deep_merge(base: Any, child: Any) -> Any:
    """Child wins; mappings merge key by key, everything else (lists included) is replaced."""
    if isinstance(base, dict) and isinstance(child, dict):
        out = dict(base)
        for k, v in child.items():
            out[k] = _deep_merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(child)


def _resolve_extends(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise ConfigError(f"extends forms a cycle: {cycle}", file=chain[-1], path="extends")
    raw = _read_yaml(path, referenced_by=str(chain[-1]) if chain else None)
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise ConfigError(f"must be a relative path to another YAML file (string), got {parent!r}", file=path, path="extends")
    base = _resolve_extends((path.parent / parent), (*chain, path))
    return _deep_merge(base, raw)


_TOKEN_RE = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _split_path(key: str) -> list[str | int]:
    """``generators[0].cost`` or ``generators.0.cost`` -> ['generators', 0, 'cost']."""
    parts: list[str | int] = []
    pos = 0
    key = key.strip()
    for m in _TOKEN_RE.finditer(key):
        gap = key[pos:m.start()]
        if gap not in ("", "."):
            raise ValueError(f"cannot parse key path {key!r}")
        name, idx = m.groups()
        if idx is not None:
            parts.append(int(idx))
        elif name.isdigit():
            parts.append(int(name))
        else:
            parts.append(name)
        pos = m.end()
    if not parts or key[pos:]:
        raise ValueError(f"cannot parse key path {key!r}")
    return parts


def _format_path(parts: Sequence[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def parse_overrides(pairs: Sequence[str]) -> list[tuple[list[str | int], Any, str]]:
    """``["a.b=1", "generators[0].cost=0.5"]`` -> [(path parts, YAML-parsed value, original)]."""
    out = []
    for pair in pairs or ():
        if "=" not in pair:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            parts = _split_path(key)
        except ValueError as e:
            raise ConfigError(f"--set {pair!r}: {e}") from None
        if parts[0] == "extends":
            raise ConfigError("--set cannot change 'extends'; edit the file instead")
        try:
            parsed = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {pair!r}: value is not valid YAML: {e}") from None
        out.append((parts, parsed, pair))
    return out


_LIST_SECTIONS = ("data", "models", "generators")


def _normalise_sections(raw: dict) -> dict:
    """``data: moons`` / ``data: {...}`` / ``generators: [generic, {...}]`` -> lists of mappings."""
    raw = dict(raw)
    for sec in _LIST_SECTIONS:
        if sec not in raw or raw[sec] is None:
            continue
        items = raw[sec]
        if isinstance(items, (str, dict)):
            items = [items]
        if isinstance(items, list):
            raw[sec] = [{"name": it} if isinstance(it, str) else it for it in items]
    return raw


def _apply_override(raw: dict, parts: list[str | int], value: Any, pair: str, file) -> None:
    node: Any = raw
    for i, p in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        here = _format_path(parts[: i + 1])
        if isinstance(p, int):
            if not isinstance(node, list) or not -len(node) <= p < len(node):
                n = len(node) if isinstance(node, list) else 0
                raise ConfigError(f"--set {pair!r}: index {p} out of range (the list has {n} entries)", file=file, path=here)
            if isinstance(node[p], str) and not isinstance(nxt, int):
                node[p] = {"name": node[p]}
            node = node[p]
        else:
            if not isinstance(node, dict):
                raise ConfigError(f"--set {pair!r}: {here} is not a mapping", file=file, path=here)
            if p not in node or node[p] is None:
                node[p] = [] if isinstance(nxt, int) else {}
            elif isinstance(node[p], (str, dict)) and isinstance(nxt, int) and p in _LIST_SECTIONS:
                node[p] = _normalise_sections({p: node[p]})[p]
            node = node[p]
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or not -len(node) <= last < len(node):
            raise ConfigError(f"--set {pair!r}: index {last} out of range", file=file, path=_format_path(parts))
    elif not isinstance(node, dict):
        raise ConfigError(f"--set {pair!r}: {_format_path(parts[:-1])} is not a mapping", file=file, path=_format_path(parts))
    node[last] = value


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


class _Ctx:
    def __init__(self, file, overridden: dict[str, str]):
        self.file = file
        self.overridden = overridden

    def error(self, path: str, message: str) -> ConfigError:
        src = self.overridden.get(path)
        if src is None:  # the override may have set a parent mapping
            for k, v in self.overridden.items():
                if path.startswith(k + ".") or path.startswith(k + "["):
                    src = v
                    break
        if src is not None:
            message += f" (from --set {src})"
        return ConfigError(message, file=self.file, path=path)


def _type_name(tp) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    if tp is Any:
        return "any value"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, path: str, ctx: _Ctx) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, path, ctx)
            except ConfigError as e:
                errors.append(e)
        if len(errors) == 1:
            raise errors[0]
        raise ctx.error(path, f"expected {_type_name(tp)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ctx.error(path, f"expected true or false, got {value!r} ({type(value).__name__})")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ctx.error(path, f"expected an integer, got {value!r} ({type(value).__name__})")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT_RE.match(value.strip()):  # YAML 1.1 reads 1e-3 as a string
            return float(value)
        raise ctx.error(path, f"expected a number, got {value!r} ({type(value).__name__})")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ctx.error(path, f"expected a string, got {value!r} ({type(value).__name__})")
    if origin is tuple:
        (elem,) = typing.get_args(tp)[:1]
        if not isinstance(value, (list, tuple)):
            raise ctx.error(path, f"expected a list of {_type_name(elem)}, got {value!r}")
        return tuple(_coerce(v, elem, f"{path}[{i}]", ctx) for i, v in enumerate(value))
    if origin in (collections.abc.Mapping, dict) or tp is dict:
        if not isinstance(value, dict):
            raise ctx.error(path, f"expected a mapping, got {value!r}")
        return dict(value)
    raise TypeError(f"internal: unsupported config type {tp!r} at {path}")


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _build(cls, raw: Any, path: str, ctx: _Ctx, *, extra_ok: bool = False) -> tuple[dict, dict]:
    """Validate a mapping against dataclass ``cls``: returns (known fields, extra keys)."""
    if not isinstance(raw, dict):
        raise ctx.error(path, f"expected a mapping with keys {', '.join(f.name for f in dataclasses.fields(cls))}; "
                              f"got {raw!r}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    known, extra = {}, {}
    hidden = {n for n, f in fields.items() if f.metadata.get("internal") or n in ("hyperparams", "options")}
    for k, v in raw.items():
        kp = f"{path}.{k}" if path else str(k)
        if k not in fields or k in hidden:
            if extra_ok:
                extra[k] = v
                continue
            allowed = [f for f in fields if f not in hidden]
            raise ctx.error(kp, f"unknown key{_suggest(k, allowed)}; allowed keys: {', '.join(allowed)}")
        f = fields[k]
        val = _coerce(v, hints[k], kp, ctx)
        chk = f.metadata.get("check")
        if chk is not None and val is not None:
            problem = chk(val)
            if problem:
                raise ctx.error(kp, f"{problem}, got {val!r}")
        known[k] = val
    for name, f in fields.items():
        if name not in known and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ctx.error(f"{path}.{name}" if path else name, "required key is missing")
    return known, extra


def _check_label(label: str, path: str, ctx: _Ctx) -> None:
    if not _LABEL_RE.match(label):
        raise ctx.error(path, f"{label!r} cannot name a results folder; use letters, digits and _ . + -")


def _check_name(name: str, registry: Sequence[str] | None, what: str, path: str, ctx: _Ctx) -> None:
    if registry is None:  # the registry module is not importable: the run will fail loudly later
        return
    if name not in registry:
        raise ctx.error(path, f"unknown {what} {name!r}{_suggest(name, registry)}; available: {', '.join(sorted(registry))}")


def _registry(kind: str):
    """Names (and for generators, classes) known to cfx; None when that part is unavailable."""
    try:
        if kind == "data":
            import cfx.data as m
            return list(m.list_datasets())
        if kind == "models":
            import cfx.models as m
            return list(m.list_models())
        if kind == "generators":
            import cfx.generators as m
            return dict(m.REGISTRY)
        if kind == "metrics":
            import cfx.evaluation as m
            return list(m.list_metrics())
    except (ImportError, AttributeError):
        return None
    raise ValueError(kind)


def _signature_params(fn) -> tuple[set[str], bool]:
    """(keyword parameter names, accepts **kwargs)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return set(), True
    names = {p.name for p in sig.parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    return names, var_kw


def generator_hyperparameters(cls) -> dict[str, Any]:
    """Settable hyperparameters of a generator class: name -> default (``MISSING`` if none).

    The dataclass fields with ``init=True`` plus the keyword arguments of ``from_data``
    (which computes data-derived fields such as Wachter's MAD from the training split).
    """
    out: dict[str, Any] = {}
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            if f.init:
                default = f.default
                if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
                    default = f.default_factory()
                out[f.name] = default
    from_data = getattr(cls, "from_data", None)
    if from_data is not None:
        try:
            params = list(inspect.signature(from_data).parameters.values())
        except (TypeError, ValueError):
            params = []
        for p in params[1:]:  # the first is the data set
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                out.setdefault(p.name, p.default if p.default is not p.empty else dataclasses.MISSING)
    return out


def _check_hyperparam_type(value: Any, default: Any, path: str, ctx: _Ctx) -> Any:
    """Type-check a hyperparameter against its default's type (numbers, strings, bools)."""
    if default is dataclasses.MISSING or default is None or value is None:
        return value
    if isinstance(default, bool):
        return _coerce(value, bool, path, ctx)
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        return _coerce(value, float if isinstance(default, float) else int | float, path, ctx)
    if isinstance(default, str):
        return _coerce(value, str, path, ctx)
    if isinstance(default, (tuple, list)) and not isinstance(value, (list, tuple, int, float)):
        raise ctx.error(path, f"expected a list or a number, got {value!r}")
    # array-like defaults (numpy/jax scalars or arrays): numbers or lists of numbers
    if type(default).__module__.split(".")[0] in ("numpy", "jax", "jaxlib"):
        if isinstance(value, bool) or not isinstance(value, (int, float, list, tuple)):
            raise ctx.error(path, f"expected a number (or list of numbers), got {value!r}")
    return value


def _validate_search(raw: Any, path: str, ctx: _Ctx) -> dict:
    """The given search keys, typed and range-checked (missing keys keep their defaults)."""
    known, _ = _build(SearchConfig, raw if raw is not None else {}, path, ctx)
    return known


def _validate_generator(raw: Any, path: str, ctx: _Ctx, registry) -> GeneratorConfig:
    known, extra = _build(GeneratorConfig, raw, path, ctx, extra_ok=True)
    name = known["name"]
    classes = registry if isinstance(registry, dict) else None
    _check_name(name, list(classes) if classes is not None else None, "generator", f"{path}.name", ctx)
    if "label" in known and known["label"] is not None:
        _check_label(known["label"], f"{path}.label", ctx)
    else:
        _check_label(name, f"{path}.name", ctx)
    search = _validate_search(known.get("search"), f"{path}.search", ctx) if "search" in known else {}
    hyper = dict(extra)
    if classes is not None:
        allowed = generator_hyperparameters(classes[name])
        for k, v in extra.items():
            kp = f"{path}.{k}"
            if k not in allowed:
                keys = sorted(allowed) + ["label", "search"]
                raise ctx.error(kp, f"unknown hyperparameter of generator {name!r}{_suggest(k, keys)}; "
                                    f"allowed: {', '.join(keys)}")
            hyper[k] = _check_hyperparam_type(v, allowed[k], kp, ctx)
    return GeneratorConfig(name=name, hyperparams=hyper, search=search, label=known.get("label"))


def _validate_model(raw: Any, path: str, ctx: _Ctx, registry) -> ModelConfig:
    known, extra = _build(ModelConfig, raw, path, ctx, extra_ok=True)
    _check_name(known.get("name", "mlp"), registry, "model", f"{path}.name", ctx)
    label = known.get("label") or known.get("name", "mlp")
    _check_label(label, f"{path}.label" if known.get("label") else f"{path}.name", ctx)
    if known.get("widths") is not None and any(w < 1 for w in known["widths"]):
        raise ctx.error(f"{path}.widths", f"every width must be >= 1, got {list(known['widths'])}")
    if extra:
        try:
            import cfx.models as models
            names, var_kw = _signature_params(models.fit)
        except (ImportError, AttributeError):
            names, var_kw = set(), True
        if not var_kw:
            fixed = {f.name for f in dataclasses.fields(ModelConfig)} - {"options"}
            # the experiment controls these itself (seed per run, progress bars, fresh init)
            reserved = {"dataset", "data", "model", "seed", "progress", "init_params"}
            allowed = sorted((names - reserved) | fixed)
            for k in extra:
                if k not in names or k in reserved:
                    raise ctx.error(f"{path}.{k}", f"unknown model option{_suggest(k, allowed)}; allowed: {', '.join(allowed)}")
    return ModelConfig(**known, options=dict(extra))


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


def _validate_data(raw: Any, path: str, ctx: _Ctx, registry) -> DataConfig:
    known, extra = _build(DataConfig, raw, path, ctx, extra_ok=True)
    _check_name(known["name"], registry, "data set", f"{path}.name", ctx)
    label = known.get("label") or known["name"]
    _check_label(label, f"{path}.label" if known.get("label") else f"{path}.name", ctx)
    if extra:
        opts = _synthetic_options(known["name"])
        fixed = [f.name for f in dataclasses.fields(DataConfig) if f.name != "options"]
        for k in extra:
            if opts is None:
                raise ctx.error(f"{path}.{k}", f"unknown key{_suggest(k, fixed)}; allowed keys: {', '.join(fixed)} "
                                               "(only synthetic data sets take extra options)")
            names, var_kw = opts
            if not var_kw and k not in names:
                allowed = fixed + sorted(names)
                raise ctx.error(f"{path}.{k}", f"unknown key{_suggest(k, allowed)}; allowed keys: {', '.join(allowed)}")
    return DataConfig(**known, options=dict(extra))


def _validate_list(raw: dict, key: str, ctx: _Ctx, fn, registry) -> tuple:
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


def parse_config(raw: Mapping, *, file: str | os.PathLike | None = None, name: str | None = None,
                 overridden: Mapping[str, str] | None = None) -> ExperimentConfig:
    """Validate an already-merged mapping into an :class:`ExperimentConfig`.

    Raises :class:`ConfigError` (a ValueError) naming ``file``, the key path and the allowed values.
    """
    ctx = _Ctx(file, dict(overridden or {}))
    if not isinstance(raw, Mapping):
        raise ctx.error("", f"the top level must be a mapping, got {type(raw).__name__}")
    raw = _normalise_sections(dict(raw))
    if "extends" in raw:
        raise ctx.error("extends", "extends is only resolved when loading from a file (use load_config)")
    # the sections are validated one by one below (their own key paths and registries)
    sections = (*_LIST_SECTIONS, "search")
    top = {k: v for k, v in raw.items() if k not in sections}
    if name is not None and top.get("name") is None:
        top["name"] = name  # the file's stem
    known, _ = _build(ExperimentConfig, {**top, **{k: [] for k in _LIST_SECTIONS}}, "", ctx)
    for k in _LIST_SECTIONS:
        known.pop(k, None)
    data = _validate_list(raw, "data", ctx, _validate_data, _registry("data"))
    models = _validate_list(raw, "models", ctx, _validate_model, _registry("models"))
    generators = _validate_list(raw, "generators", ctx, _validate_generator, _registry("generators"))
    search = SearchConfig(**_validate_search(raw.get("search"), "search", ctx))
    for i, g in enumerate(generators):  # the merged options must be valid too
        merged = {**dataclasses.asdict(search), **dict(g.search)}
        _validate_search(merged, f"generators[{i}].search", ctx)
    metrics = known.get("metrics")
    if metrics is not None:
        avail = _registry("metrics")
        if not metrics:
            raise ctx.error("metrics", "expected a non-empty list of metric names (or leave it out for all)")
        for i, m in enumerate(metrics):
            _check_name(m, avail, "metric", f"metrics[{i}]", ctx)
    cfg_name = known.pop("name")
    _check_label(cfg_name, "name", ctx)
    known.pop("search", None)
    return ExperimentConfig(name=cfg_name, data=data, models=models, generators=generators, search=search,
                            source=None if file is None else str(file), **known)


def load_config(path: str | os.PathLike, overrides: Sequence[str] = (), *, data_dir: str | None = None,
                output: str | None = None) -> ExperimentConfig:
    """Read ``path`` (resolving ``extends``), apply ``key.path=value`` overrides, validate.

    ``data_dir`` (the ``--data-dir`` flag) replaces every data set's ``data_dir``; ``output``
    (``--out``) replaces ``output``. The config's ``name`` defaults to the file's stem.
    """
    path = Path(path)
    raw = _normalise_sections(_resolve_extends(path))
    overridden = {}
    for parts, value, pair in parse_overrides(overrides):
        _apply_override(raw, parts, value, pair, path)
        overridden[_format_path(parts)] = pair
    raw = _normalise_sections(raw)  # an override may have set a section to a name or a mapping
    if output is not None:
        raw["output"] = str(output)
    if data_dir is not None and isinstance(raw.get("data"), list):
        raw["data"] = [dict(d, data_dir=str(data_dir)) if isinstance(d, dict) else d for d in raw["data"]]
    return parse_config(raw, file=path, name=path.stem, overridden=overridden)


# --------------------------------------------------------------------------------------
# Serialisation (the resolved config saved with the results loads back to the same value)
# --------------------------------------------------------------------------------------


def _plain(v):
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    return v


def config_to_dict(cfg: ExperimentConfig) -> dict:
    """A plain mapping in the input schema: ``parse_config(config_to_dict(c)) == c``."""
    def data(d: DataConfig):
        out = {f.name: _plain(getattr(d, f.name)) for f in dataclasses.fields(d) if f.name != "options"}
        out.update(_plain(dict(d.options)))
        return out

    def model(m: ModelConfig):
        out = {f.name: _plain(getattr(m, f.name)) for f in dataclasses.fields(m) if f.name != "options"}
        out.update(_plain(dict(m.options)))
        return out

    def gen(g: GeneratorConfig):
        out = {"name": g.name, "label": g.label}
        out.update(_plain(dict(g.hyperparams)))
        if g.search:
            out["search"] = _plain(dict(g.search))
        return out

    return {
        "name": cfg.name,
        "description": cfg.description,
        "data": [data(d) for d in cfg.data],
        "models": [model(m) for m in cfg.models],
        "generators": [gen(g) for g in cfg.generators],
        "search": dataclasses.asdict(cfg.search),
        "metrics": _plain(cfg.metrics),
        "n_factuals": cfg.n_factuals,
        "runs": cfg.runs,
        "seed": cfg.seed,
        "output": cfg.output,
        "figures": cfg.figures,
    }


def dump_config(cfg: ExperimentConfig) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)


def experiment_identity(cfg: ExperimentConfig) -> dict:
    """What makes two runs the same experiment: everything except where files live."""
    d = config_to_dict(cfg)
    d.pop("output", None)
    d.pop("figures", None)
    d.pop("description", None)
    for item in d["data"]:
        item.pop("data_dir", None)
    return d


def effective_search(cfg: ExperimentConfig, gen: GeneratorConfig) -> dict:
    """Search options for one generator: experiment < generator defaults < generator's ``search``."""
    import cfx.generators as generators

    out = dataclasses.asdict(cfg.search)
    out.update(generators.search_defaults(gen.name) or {})
    out.update(dict(gen.search))
    return out


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


def run(config: ExperimentConfig | str | os.PathLike, *, overrides: Sequence[str] = (), out: str | os.PathLike | None = None,
        resume: bool = False, force: bool = False, data_dir: str | None = None, progress: bool = True):
    """Run an experiment (a config object or a YAML path) and write its results folder.

    Returns a :class:`cfx.benchmark.GridResult` (``.table`` long-format DataFrame, ``.summary``
    Markdown text, ``.out_dir``). See :func:`cfx.benchmark.run_grid` for resume/force.
    """
    from cfx import benchmark

    if not isinstance(config, ExperimentConfig):
        config = load_config(config, overrides, data_dir=data_dir, output=None if out is None else str(out))
    else:
        if overrides:
            raise TypeError("overrides apply to a config file; pass a path, or use config.replace(...)")
        if out is not None:
            config = config.replace(output=str(out))
        if data_dir is not None:
            config = config.replace(data=tuple(dataclasses.replace(d, data_dir=str(data_dir)) for d in config.data))
    return benchmark.run_grid(config, config.output_dir, resume=resume, force=force, progress=progress)

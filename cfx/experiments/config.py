"""The generic config loader: YAML, ``extends``, ``--set`` overrides, validation, errors.

A config file is read with ``yaml.safe_load``, merged with the file it ``extends`` (deep
merge, the child wins, lists are replaced) and overridden by ``key.path=value`` pairs
(:func:`load_raw`). An experiment kind then validates the plain mapping into its typed,
frozen schema: pydantic models built from the field types below (:class:`Spec`,
:class:`Experiment`), checked section by section with :meth:`ConfigSource.validate`, which turns a
pydantic ``ValidationError`` into a :class:`ConfigError` naming the file, the key path
(``generators[1].lamda``), what was expected and a close match ("did you mean 'cost'?").

Nothing here knows an experiment kind; nothing from here enters jitted code.

Example::

    raw = load_raw("configs/quickstart.yaml", ["seed=1"])
    ctx = raw.source()
    search = ctx.validate(MySearch, raw.data.get("search", {}), "search")
"""

from __future__ import annotations

import copy
import dataclasses
import os
import typing
from pathlib import Path
from typing import Any, Mapping, Sequence

import pydantic
import yaml
from pydantic import ConfigDict

from cfx import _deprecated
from cfx.experiments._errors import (
    ConfigError,
    ConfigSource,
    check_label,
    check_name,
    format_path,
    split_path,
)
from cfx.experiments import fields
from cfx.experiments.fields import *  # noqa: F403  (re-exported: the field types, fields.__all__)
from cfx.experiments.fields import Bool, Label, NonNegativeInt, Str, got, suggest

__all__ = [
    "ConfigError",
    "ConfigSource",
    "RawConfig",
    "Spec",
    "Experiment",
    "Preset",
    "apply_preset",
    "load_raw",
    "parse_overrides",
    "split_path",
    "format_path",
    "deep_merge",
    "check_label",
    "check_name",
    "plain",
    *fields.__all__,
]


class Spec(pydantic.BaseModel):
    """Base of every config section: frozen, unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    def replace(self, **changes) -> "Spec":
        """A copy with ``changes`` (values as the fields hold them, not re-validated)."""
        return self.model_copy(update=changes)


class Experiment(Spec):
    """Fields every experiment kind has.

    ``kind`` picks the schema, runner and report (the loader fills in ``benchmark`` when a
    file has no ``kind:``); ``name`` names the results folder ``results/<name>`` unless
    ``output`` is given; ``seed`` is the root of every derived seed; ``figures`` turns the PNG
    figures on or off; ``preset`` names the kind's :class:`Preset` whose values were merged in
    (kept in the resolved config so a saved run says which semantics it followed).
    """

    kind: Str
    name: Label
    description: Str = ""
    preset: Str | None = None
    seed: NonNegativeInt = 0
    output: Str | None = None
    figures: Bool = True

    # the file it was read from (for error messages): not part of the experiment
    _source: str | None = pydantic.PrivateAttr(default=None)

    #: keys of the mapping that say where things are, not what is computed
    LOCATION_KEYS: typing.ClassVar[tuple[str, ...]] = ("output", "figures", "description")

    def __eq__(self, other: object) -> bool:  # the source file is not part of the experiment
        return type(self) is type(other) and self.__dict__ == other.__dict__  # type: ignore[union-attr]

    __hash__ = None  # type: ignore[assignment]

    @property
    def source(self) -> str | None:
        """The file the config was read from (None for a mapping)."""
        return self._source

    @property
    def output_dir(self) -> Path:
        """Where results go: ``output``, else ``results/<name>``."""
        return Path(self.output) if self.output else Path("results") / self.name

    def to_dict(self) -> dict:
        """A plain mapping in the input schema (kinds override for shorthand-free output)."""
        return plain(self.model_dump())

    def identity(self) -> dict:
        """What makes two runs the same experiment: everything except where files live (the
        location keys, and each data set's ``data_dir``)."""
        d = self.to_dict()
        for k in self.LOCATION_KEYS:
            d.pop(k, None)
        for item in d.get("data") or ():
            if isinstance(item, dict):
                item.pop("data_dir", None)
        return d

    def dump(self) -> str:
        """The resolved config as YAML text (loads back to an equal config)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)


def plain(v: Any) -> Any:
    """Tuples as lists, mappings as dicts, config sections as their mappings (for YAML/JSON)."""
    if isinstance(v, (tuple, list)):
        return [plain(x) for x in v]
    if isinstance(v, Mapping):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, Spec):
        return plain(v.model_dump())
    return v


# --------------------------------------------------------------------------------------
# Reading: YAML, extends, overrides
# --------------------------------------------------------------------------------------


def _read_yaml(path: Path, *, referenced_by: str | None = None) -> dict:
    if not path.is_file():
        raise ConfigError(
            f"config file not found: {path}", file=referenced_by, path="extends" if referenced_by else None
        )
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"not valid YAML: {e}", file=path) from None
    except UnicodeDecodeError as e:  # a binary or non-UTF-8 file given as the config
        raise ConfigError(f"not a UTF-8 text file (byte {e.start}): is this the config?", file=path) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"the top level must be a mapping of keys, got {type(raw).__name__}", file=path)
    return raw


def deep_merge(base: Any, child: Any) -> Any:
    """Child wins; mappings merge key by key, everything else (lists included) is replaced."""
    if isinstance(base, dict) and isinstance(child, dict):
        out = dict(base)
        for k, v in child.items():
            out[k] = deep_merge(base[k], v) if k in base else copy.deepcopy(v)
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
        raise ConfigError(
            f"must be a relative path to another YAML file (string), got {parent!r}", file=path, path="extends"
        )
    return deep_merge(_resolve_extends(path.parent / parent, (*chain, path)), raw)


def parse_overrides(pairs: Sequence[str]) -> list[tuple[list[str | int], Any, str]]:
    """``["a.b=1", "generators[0].cost=0.5"]`` -> [(path parts, YAML-parsed value, original)]."""
    out = []
    for pair in pairs or ():
        if "=" not in pair:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            parts = split_path(key)
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


def _as_list(node: Any) -> list:
    """A one-item shorthand (``data: moons``, ``data: {...}``) as the list it stands for."""
    return [node] if isinstance(node, (str, dict)) else node


def _apply_override(raw: dict, parts: list[str | int], value: Any, pair: str, file) -> None:
    """Set ``raw[parts] = value``; a list item given as a name (``- wachter``) becomes
    ``{name: wachter}`` when the path goes into it."""
    node: Any = raw
    for i, p in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        here = format_path(parts[: i + 1])
        if isinstance(p, int):
            if not isinstance(node, list) or not -len(node) <= p < len(node):
                n = len(node) if isinstance(node, list) else 0
                raise ConfigError(
                    f"--set {pair!r}: index {p} out of range (the list has {n} entries)", file=file, path=here
                )
            if isinstance(node[p], str) and not isinstance(nxt, int):
                node[p] = {"name": node[p]}
            node = node[p]
        else:
            if not isinstance(node, dict):
                raise ConfigError(f"--set {pair!r}: {here} is not a mapping", file=file, path=here)
            if p not in node or node[p] is None:
                node[p] = [] if isinstance(nxt, int) else {}
            elif isinstance(nxt, int):
                node[p] = _as_list(node[p])
            node = node[p]
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or not -len(node) <= last < len(node):
            raise ConfigError(f"--set {pair!r}: index {last} out of range", file=file, path=format_path(parts))
    elif not isinstance(node, dict):
        raise ConfigError(
            f"--set {pair!r}: {format_path(parts[:-1])} is not a mapping", file=file, path=format_path(parts)
        )
    node[last] = value


@dataclasses.dataclass
class RawConfig:
    """A merged, overridden, not yet validated config: the mapping, its file, the overrides."""

    data: dict
    file: Path | None = None
    overridden: dict[str, str] = dataclasses.field(default_factory=dict)

    def source(self) -> "ConfigSource":
        """Where this config came from: builds located :class:`ConfigError` s and validates sections."""
        return ConfigSource(self.file, self.overridden)

    def context(self) -> "ConfigSource":
        """Deprecated (cfx 0.3 removes it): :meth:`source`."""
        return _deprecated.warn("RawConfig.context()", "use RawConfig.source() (a ConfigSource)") or self.source()


def load_raw(path: str | os.PathLike, overrides: Sequence[str] = ()) -> RawConfig:
    """Read ``path`` (resolving ``extends``) and apply ``key.path=value`` overrides."""
    path = Path(path)
    raw = _resolve_extends(path)
    overridden = {}
    for parts, value, pair in parse_overrides(overrides):
        _apply_override(raw, parts, value, pair, path)
        overridden[format_path(parts)] = pair
    return RawConfig(raw, path, overridden)


# --------------------------------------------------------------------------------------
# Presets: a named set of values a kind fixes (a paper's reference semantics)
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named, documented set of config values that reproduce a reference implementation.

    ``values`` is a raw (YAML-shaped) mapping merged *under* the config: every key it holds is
    fixed by the preset. A config may repeat a fixed key with the same value (a saved,
    resolved config does), but a different value is refused (:func:`apply_preset`): a preset
    is a claim about semantics, and a silently half-applied one would not be.

    ``expand`` (optional) fills what a flat mapping cannot say, such as per-data-set or
    per-model defaults inside lists: ``expand(raw) -> raw`` gets the merged mapping and
    returns it completed; it must fill only keys the config leaves unset.

    ``source`` says what the values were read from (repository, version, file).
    """

    name: str
    description: str
    values: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    source: str = ""
    expand: typing.Callable[[dict], dict] | None = None


def _leaves(node: Any, prefix: tuple = ()) -> list[tuple[tuple, Any]]:
    """(key path, value) for every non-mapping value under ``node`` (lists are leaves)."""
    if isinstance(node, Mapping) and node:
        return [leaf for k, v in node.items() for leaf in _leaves(v, (*prefix, k))]
    return [(prefix, node)]


def _get(node: Any, path: tuple) -> tuple[bool, Any]:
    for k in path:
        if not isinstance(node, Mapping) or k not in node:
            return False, None
        node = node[k]
    return True, node


def apply_preset(raw: "RawConfig", presets: Mapping[str, Preset], kind: str) -> "RawConfig":
    """Merge the preset named by ``raw.data['preset']`` under the config (no ``preset``: as is).

    Raises ConfigError for an unknown preset name (listing the kind's presets) and for a key the
    preset fixes that the config sets to another value (naming both values).
    """
    ctx, d = raw.source(), raw.data
    name = d.get("preset")
    if name is None:
        return raw
    if not isinstance(name, str):
        raise ctx.error("preset", f"expected the name of a preset, {got(name)}")
    if name not in presets:
        listing = ", ".join(sorted(presets)) or f"none (kind {kind!r} has no presets)"
        raise ctx.error(
            "preset", f"unknown preset {name!r} for kind {kind!r}{suggest(name, list(presets))}; available: {listing}"
        )
    preset = presets[name]
    for path, fixed in _leaves(dict(preset.values)):
        present, value = _get(d, path)
        if present and value is not None and plain(value) != plain(fixed):
            raise ctx.error(
                format_path(list(path)),
                f"preset {name!r} fixes this to {fixed!r}, but the config sets {value!r}; remove the "
                f"key to follow the preset, or remove 'preset' and set every value yourself",
            )
    merged = deep_merge(copy.deepcopy(dict(preset.values)), {k: v for k, v in d.items()})
    if preset.expand is not None:
        merged = preset.expand(merged)
    return RawConfig(merged, raw.file, raw.overridden)


__getattr__ = _deprecated.module_aliases(__name__, {"Context": (__name__, "ConfigSource")})  # its name before 0.2

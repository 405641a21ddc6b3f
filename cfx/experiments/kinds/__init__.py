"""Experiment kinds: a config's ``kind:`` names a schema, a runner and a report.

A kind is one module defining ``run`` and ``report`` (and, where the defaults do not do,
``check``, ``expected``, ``show``, ``PRESETS``) and ``KIND = Kind.of(__name__, Schema)``;
:data:`KINDS` maps its name to the module (imported on first use, so ``cfx list`` does not
load every kind). Adding a kind is that module plus one line here (or :func:`register_kind`
at run time).

The runner (:func:`cfx.experiments.run`) drives every kind the same way::

    cfg = kind.schema.parse(raw)              # typed, validated config; ConfigError on bad input
    state = kind.check(cfg)                   # checks needing data; nothing trained or written yet
    store.claim(...)                          # claim the folder: new, resume or refuse
    kind.run(cfg, store, state, progress)     # compute and save records (skipping done ones)
    report = kind.report(cfg, store)          # tables and figures, always from saved records
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import types
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from cfx import _deprecated
from cfx.experiments.config import Experiment, Preset, RawConfig, apply_preset
from cfx.experiments.progress import Progress
from cfx.experiments.store import RecordPath, Store
from cfx.registry import Registry

__all__ = ["Kind", "Report", "KINDS", "register_kind", "get_kind", "list_kinds", "list_presets"]


@dataclasses.dataclass
class Report:
    """What a finished run returns: ``summary`` (Markdown, printed by ``cfx run``), the
    results folder, the figures written, and the kind's tables by name."""

    summary: str
    out_dir: Path
    figures: list[Path] = dataclasses.field(default_factory=list)
    tables: dict[str, Any] = dataclasses.field(default_factory=dict)


def no_check(cfg) -> None:
    """The default ``check``: nothing to check beyond the schema."""
    return None


def no_records(cfg) -> list:
    """The default ``expected``: the run does not list its records (progress counts nothing)."""
    return []


def show_summary(store: Store, raw, metrics=None) -> str:
    """The default ``show``: the ``summary.md`` the report wrote; LookupError while unfinished."""
    path = store.root / "summary.md"
    if not path.exists():
        raise LookupError(f"unfinished run ({len(store.records(()))} records saved so far)")
    return path.read_text()


@dataclasses.dataclass(frozen=True)
class Kind:
    """An experiment kind: a schema, a run and a report; the rest has defaults.

    Attributes:
      name: the config's ``kind:`` value.
      schema: an :class:`cfx.experiments.config.Experiment` subclass with a classmethod
        ``parse(raw: RawConfig) -> schema`` and a method ``plan() -> str`` (one line: what a
        run computes, for ``--dry-run``).
      run: ``(cfg, store, state, progress) -> None``: compute and save the records that
        are not done yet.
      report: ``(cfg, store) -> Report``: write and return tables and figures from the saved
        records (a resumed run reports exactly what an uninterrupted one does).
      check: ``cfg -> state``: everything that can fail on bad input (data files,
        hyperparameters), before anything is trained or written (default: nothing, state None).
        (``prepare`` before cfx 0.2: a generator's ``prepare`` is something else.)
      expected: ``cfg -> [record path]``: the records of a complete run (default: none listed).
      show: ``(store, raw, metrics) -> str``: the table of a finished folder (``cfx show``;
        ``raw`` is its saved config.yaml as a plain mapping); LookupError while unfinished
        (default: the folder's ``summary.md``).
      description: one line for ``cfx list``.
      unit: what one record of ``expected`` is called in progress output.
      presets: name -> :class:`cfx.experiments.config.Preset` a config selects with
        ``preset: <name>`` (merged under the config before ``schema.parse``).
    """

    name: str
    schema: type[Experiment]
    run: Callable[[Any, Store, Any, Progress], None]
    report: Callable[[Any, Store], Report]
    check: Callable[[Any], Any] = no_check
    expected: Callable[[Any], Sequence[RecordPath]] = no_records
    show: Callable[[Store, Any, Sequence[str] | None], str] = show_summary
    description: str = ""
    unit: str = "record"
    presets: Mapping[str, Preset] = dataclasses.field(default_factory=dict)

    @property
    def prepare(self) -> Callable[[Any], Any]:
        """Deprecated (cfx 0.3 removes it): ``check``."""
        _deprecated.warn("Kind.prepare", "use Kind.check")
        return self.check

    @classmethod
    def of(cls, module: str | types.ModuleType, schema: type[Experiment], **fields) -> Kind:
        """The kind a module defines by convention: its functions named ``run``, ``report``
        and, where it defines them, ``check``, ``expected``, ``show``, and its ``PRESETS``
        mapping; the name is the module's last dotted part. ``fields`` (``name``,
        ``description``, ``unit``, or any of those callables) override.

        Example (at the end of a kind's module)::

            KIND = Kind.of(__name__, SweepConfig, description="cost vs validity")
        """
        module = sys.modules[module] if isinstance(module, str) else module
        found = {part: getattr(module, attr, None) for part, attr in _CONVENTION.items()}
        # a submodule named like a part (``kinds/x/report.py``) is not the part
        found = {part: v for part, v in found.items() if v is not None and not isinstance(v, types.ModuleType)}
        return cls(**{"name": module.__name__.rpartition(".")[2], "schema": schema, **found, **fields})

    def parse(self, raw: RawConfig):
        """The validated config of ``raw`` (its preset, if any, merged under it first)."""
        return self.schema.parse(apply_preset(raw, self.presets, self.name))


#: Kind field -> the module attribute :meth:`Kind.of` takes it from
_CONVENTION = {part: part for part in ("run", "report", "check", "expected", "show")} | {"presets": "PRESETS"}

_deprecated.renamed_keywords(Kind, {"prepare": "check"})  # Kind(prepare=...) warns


#: kind name -> module defining ``KIND`` (or a Kind registered at run time)
KINDS: Registry[str | Kind] = Registry(
    "experiment kind",
    {
        "benchmark": "cfx.experiments.kinds.benchmark",
        "dynamics": "cfx.experiments.kinds.dynamics",
        "ct": "cfx.experiments.kinds.ct",
        "eccco": "cfx.experiments.kinds.eccco",
    },
    describe=lambda k: (importlib.import_module(k).KIND if isinstance(k, str) else k).description,
)


def register_kind(kind: Kind | str, name: str | None = None) -> None:
    """Add a kind: a :class:`Kind`, or the name of a module defining ``KIND``."""
    if isinstance(kind, Kind):
        KINDS[name or kind.name] = kind
    elif name is None:
        raise TypeError("register_kind(module_name, name): a module name needs the kind's name")
    else:
        KINDS[name] = kind


def get_kind(name: str) -> Kind:
    """The :class:`Kind` called ``name`` (KeyError for an unknown name)."""
    entry = KINDS[name]
    if isinstance(entry, str):
        entry = importlib.import_module(entry).KIND
        KINDS[name] = entry
    return entry


def list_kinds() -> dict[str, str]:
    """Kind name -> one-line description."""
    return {name: get_kind(name).description for name in KINDS}


def list_presets() -> dict[str, str]:
    """``kind/preset`` -> one-line description, for every kind's presets."""
    return {f"{name}/{p.name}": p.description for name in KINDS for p in get_kind(name).presets.values()}

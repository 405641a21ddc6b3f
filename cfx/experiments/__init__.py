"""Config-driven experiments: load a YAML config, run its kind, write a results folder.

    cfg = cfx.experiments.load_config("configs/quickstart.yaml", overrides=["seed=1"])
    report = cfx.experiments.run(cfg, out="results/qs")        # or run("configs/...yaml")
    print(report.summary)

A config's ``kind:`` (default ``benchmark``) picks its schema, runner and report
(:mod:`cfx.experiments.kinds`). Modules, bottom to top — each imports only those below it
(``tests/test_imports.py`` pins this):

    fields      pydantic field types (strict, cfx's wording) and the did-you-mean hint
    config      YAML, extends, --set overrides, Spec / Experiment bases, ConfigError
    store       the results folder: atomic writes, records keyed by paths, resume
    progress    a tqdm bar on a terminal, plain lines in a log
    tables      long table, pooled mean ± sd summary, Markdown
    kinds       the Kind contract and the registry (name -> module)
    kinds.*     one module per kind: schema + runner + report (benchmark: today's grid)
    (this file) load_config, run, show: the same steps for every kind
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import yaml

from cfx import _deprecated
from cfx.experiments.config import ConfigError, ConfigSource, Experiment, Preset, RawConfig, load_raw, suggest
from cfx.experiments.kinds import KINDS, Kind, Report, get_kind, list_kinds, list_presets, register_kind
from cfx.experiments.progress import Progress
from cfx.experiments.store import CONFIG_FILE, OutputExistsError, Store

__all__ = [
    "ConfigError",
    "ConfigSource",
    "RawConfig",
    "load_raw",
    "OutputExistsError",
    "Experiment",
    "Progress",
    "Kind",
    "Report",
    "Store",
    "KINDS",
    "register_kind",
    "get_kind",
    "list_kinds",
    "list_presets",
    "Preset",
    "load_config",
    "parse_config",
    "run",
    "show",
    "DEFAULT_KIND",
]

DEFAULT_KIND = "benchmark"


def _kind(raw: RawConfig) -> Kind:
    ctx = raw.source()
    name = raw.data.get("kind", DEFAULT_KIND) if isinstance(raw.data, Mapping) else DEFAULT_KIND
    if name is None:
        name = DEFAULT_KIND
    if not isinstance(name, str):
        raise ctx.error("kind", f"expected the name of an experiment kind, got {name!r}")
    if name not in KINDS:
        raise ctx.error(
            "kind",
            f"unknown experiment kind {name!r}{suggest(name, list(KINDS))}; available: {', '.join(sorted(KINDS))}",
        )
    return get_kind(name)


def parse_config(
    raw: Mapping | RawConfig, *, file: str | os.PathLike | None = None, name: str | None = None
) -> Experiment:
    """Validate an already-merged mapping with the schema of its ``kind``.

    ``name`` is the default ``name`` (load_config passes the file's stem). Raises
    :class:`ConfigError` (a ValueError) naming ``file``, the key path and the allowed values.
    """
    if not isinstance(raw, RawConfig):
        raw = RawConfig(dict(raw) if isinstance(raw, Mapping) else raw, None if file is None else Path(file))
    if not isinstance(raw.data, Mapping):
        raise raw.source().error("", f"the top level must be a mapping, got {type(raw.data).__name__}")
    if name is not None and raw.data.get("name") is None:
        raw.data["name"] = name
    kind = _kind(raw)
    if raw.data.get("kind") is None:
        raw.data["kind"] = kind.name
    return kind.parse(raw)


def load_config(
    path: str | os.PathLike,
    overrides: Sequence[str] = (),
    *,
    data_dir: str | None = None,
    output: str | os.PathLike | None = None,
) -> Experiment:
    """Read ``path`` (resolving ``extends``), apply ``key.path=value`` overrides, validate.

    ``data_dir`` (the ``--data-dir`` flag) replaces every data set's ``data_dir``; ``output``
    (``--out``) replaces ``output``. The config's ``name`` defaults to the file's stem.
    """
    raw = load_raw(path, overrides)
    cfg = parse_config(raw, name=Path(path).stem)
    return _relocate(cfg, output=output, data_dir=data_dir)


def _relocate(cfg: Experiment, *, output=None, data_dir=None) -> Experiment:
    source = cfg.source
    if output is not None:
        cfg = cfg.replace(output=str(output))
    if data_dir is not None and hasattr(cfg, "data"):
        cfg = cfg.replace(data=tuple(d.replace(data_dir=str(data_dir)) for d in cfg.data))
    cfg._source = source
    return cfg


def _saved_identity(path: Path) -> dict:
    return load_config(path).identity()


def run(
    config: Experiment | str | os.PathLike,
    *,
    overrides: Sequence[str] = (),
    out: str | os.PathLike | None = None,
    resume: bool = False,
    force: bool = False,
    data_dir: str | None = None,
    progress: bool = True,
) -> Report:
    """Run an experiment (a config object or a YAML path) and write its results folder.

    Args:
      config: a validated config (``load_config``) or the path of a YAML file.
      overrides: ``key.path=value`` pairs (with a path only).
      out: the results folder (default: the config's ``output``, else ``results/<name>``).
      resume: continue a folder of the same experiment; finished records are skipped.
      force: delete an existing cfx results folder and start over.
      data_dir: where real data files are read from.
      progress: a progress bar on a terminal, one line per finished record otherwise.

    Returns the kind's :class:`Report` (``.summary`` Markdown, ``.out_dir``, ``.figures``, tables).

    Raises:
      ConfigError: bad input found before anything is trained or written.
      OutputExistsError: the folder holds another experiment (or this one, without resume/force).
      FileNotFoundError: a real data file is missing (its path is named).
    """
    if not isinstance(config, Experiment):
        config = load_config(config, overrides, data_dir=data_dir, output=out)
    else:
        if overrides:
            raise TypeError("overrides apply to a config file; pass a path, or use config.replace(...)")
        config = _relocate(config, output=out, data_dir=data_dir)
    kind = get_kind(config.kind)
    state = kind.check(config)
    store = Store(config.output_dir)
    expected = list(kind.expected(config))
    store.claim(config.dump(), config.identity(), _saved_identity, resume=resume, force=force, expected=expected)
    initial = sum(store.done(p) for p in expected)
    with Progress(len(expected), initial=initial, desc=config.name, unit=kind.unit, enabled=progress) as bar:
        kind.run(config, store, state, bar)
    return kind.report(config, store)


def show(root: str | os.PathLike, metrics: Sequence[str] | None = None) -> str:
    """The table of a results folder written by :func:`run`.

    Raises FileNotFoundError for a folder cfx did not write, LookupError (saying how many
    records are done) for an unfinished run.
    """
    store = Store(root)
    if not store.is_results_folder():
        raise FileNotFoundError(f"{root} is not a cfx results folder (no {CONFIG_FILE})")
    raw = yaml.safe_load((store.root / CONFIG_FILE).read_text()) or {}
    kind = get_kind(raw.get("kind") or DEFAULT_KIND)
    return kind.show(store, raw, metrics)


# renamed in cfx 0.2 (removed in 0.3): the old name still works, with a warning
__getattr__ = _deprecated.module_aliases("cfx.experiments", {"Context": ("cfx.experiments.config", "ConfigSource")})

"""The ``cfx`` command: run experiments from config files, list what cfx knows, show results.

    cfx run CONFIG [--set key=value ...] [--out DIR] [--resume] [--force] [--data-dir DIR]
            [--compile-cache DIR | --no-compile-cache]
    cfx list [datasets|models|generators|metrics|kinds]
    cfx show RESULT_DIR

Exit codes: 0 success; 1 a run failed (e.g. a missing data file); 2 bad config or usage, or
an output folder that must not be overwritten; 130 interrupted (the folder stays resumable).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Sequence

EPILOG_RUN = """\
examples:
  cfx run configs/quickstart.yaml
  cfx run configs/benchmark.yaml --set runs=3 --set "generators[0].cost=0.5" --out results/b3
  cfx run configs/benchmark.yaml --resume          # continue an interrupted run
  cfx run configs/benchmark.yaml --dry-run         # validate and print the resolved config

--set takes a key path (dots, [i] or .i for list items) and a YAML value; it is
validated like the file. Data files are read from --data-dir, else the config's
data_dir, else $CFX_DATA_DIR, else ../shared/data next to the repository.

Compiled programs are kept in JAX's persistent compilation cache, so running the
same config again skips most compiling: --compile-cache DIR, else
$CFX_COMPILE_CACHE (off: 0), else $XDG_CACHE_HOME/cfx/jax or ~/.cache/cfx/jax.
Delete the folder at any time; --no-compile-cache runs without it.
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cfx",
        description="Counterfactual explanations in JAX: config-driven experiments.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'cfx COMMAND --help' for the options of a command.",
    )
    from cfx import __version__

    p.add_argument("--version", action="version", version=f"cfx {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run (or resume) the experiment of a config file",
        description="Run the experiment of a YAML config (its 'kind:', default benchmark: train the "
        "models, search counterfactuals with every generator, evaluate) and write a "
        "results folder (resolved config, environment, models, counterfactuals, tables, "
        "figures, timings).",
        epilog=EPILOG_RUN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("config", metavar="CONFIG", help="experiment config (YAML)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set seed=1 (repeatable)",
    )
    run.add_argument("--out", metavar="DIR", help="results folder (default: the config's output, else results/<name>)")
    group = run.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue an interrupted run of the same experiment")
    group.add_argument("--force", action="store_true", help="delete an existing results folder and start over")
    run.add_argument("--data-dir", metavar="DIR", help="folder with the real data files (default: $CFX_DATA_DIR)")
    run.add_argument(
        "--dry-run", action="store_true", help="validate, print the resolved config and the grid size, stop"
    )
    run.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress output (by default: a bar on a terminal, one line per finished cell otherwise)",
    )
    cache = run.add_mutually_exclusive_group()
    cache.add_argument(
        "--compile-cache",
        metavar="DIR",
        help="folder of JAX's persistent compilation cache (default: $CFX_COMPILE_CACHE, else "
        "$XDG_CACHE_HOME/cfx/jax or ~/.cache/cfx/jax)",
    )
    cache.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="compile everything afresh, neither reading nor writing the compilation cache",
    )

    ls = sub.add_parser(
        "list",
        help="list data sets, models, generators, metrics and experiment kinds",
        description="List what cfx knows, with one-line descriptions.",
    )
    ls.add_argument(
        "what",
        nargs="?",
        choices=["datasets", "models", "generators", "metrics", "kinds", "presets"],
        help="only this section (default: all)",
    )

    show = sub.add_parser(
        "show",
        help="print the table of a results folder",
        description="Print the summary table of a finished run (or the progress of an unfinished one).",
    )
    show.add_argument("result_dir", metavar="RESULT_DIR", help="a folder written by 'cfx run'")
    show.add_argument(
        "--metrics", metavar="NAMES", help="comma-separated metric columns (default: the config's or headline)"
    )
    return p


def _err(msg: str) -> None:
    print(f"cfx: error: {msg}", file=sys.stderr)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"cfx: warning: {message}", file=sys.stderr if file is None else file)


def _cmd_run(args) -> int:
    with warnings.catch_warnings():  # one-line warnings on the terminal, restored afterwards
        warnings.showwarning = _show_warning
        return _run(args)


def _run(args) -> int:
    from cfx import experiments, search
    from cfx.experiments import ConfigError, OutputExistsError

    try:
        cfg = experiments.load_config(args.config, args.overrides, data_dir=args.data_dir, output=args.out)
    except ConfigError as e:
        _err(str(e))
        return 2
    if args.dry_run:
        print(cfg.dump(), end="")
        print(f"# {cfg.plan()}")
        return 0
    out = cfg.output_dir
    cache = search.compile_cache(args.compile_cache, disabled=args.no_compile_cache)
    env_file = Path(out) / "environment.json"
    env_before = _read_text(env_file)
    try:
        res = experiments.run(cfg, resume=args.resume, force=args.force, progress=not args.no_progress)
    except (ConfigError, OutputExistsError) as e:
        _err(str(e))
        return 2
    except FileNotFoundError as e:
        _err(str(e))
        return 1
    except KeyboardInterrupt:
        cmd = " ".join(
            [
                "cfx",
                "run",
                args.config,
                *[f"--set {s}" for s in args.overrides],
                *(["--out", args.out] if args.out else []),
                "--resume",
            ]
        )
        _record_cache(env_file, env_before, cache)
        print(f"\ninterrupted: what finished is saved in {out}; continue with\n  {cmd}", file=sys.stderr)
        return 130
    _record_cache(env_file, env_before, cache)
    print(res.summary)
    print(f"results: {res.out_dir}")
    for f in res.figures:
        print(f"figure:  {f}")
    return 0


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _record_cache(env_file: Path, before: str | None, cache) -> None:
    """Add the compilation cache of this run (folder, hits, writes) to ``environment.json``:
    top level and this session's entry. Only when this run wrote the file (never an older run's)."""
    from cfx.experiments.store import write_json

    text = _read_text(env_file)
    if text is None or text == before:
        return
    try:
        env = json.loads(text)
        record = cache.record()
        env["compile_cache"] = record
        if env.get("sessions"):
            env["sessions"][-1]["compile_cache"] = record
        write_json(env_file, env)
    except Exception as e:  # bookkeeping only: never fails a finished run
        warnings.warn(f"could not record the compilation cache in {env_file}: {e}")


def _cmd_list(args) -> int:
    sections = []
    if args.what in (None, "datasets"):
        import cfx.data

        sections.append(("data sets", cfx.data.list_datasets()))
    if args.what in (None, "models"):
        import cfx.models

        sections.append(("models", cfx.models.list_models()))
    if args.what in (None, "generators"):
        import cfx.generators

        sections.append(("generators", cfx.generators.describe()))
    if args.what in (None, "metrics"):
        import cfx.evaluation

        sections.append(("metrics", cfx.evaluation.list_metrics()))
    if args.what in (None, "kinds"):
        import cfx.experiments

        sections.append(("experiment kinds", cfx.experiments.list_kinds()))
    if args.what in (None, "presets"):
        import cfx.experiments

        presets = cfx.experiments.list_presets()
        if presets or args.what == "presets":
            sections.append(("presets (preset: NAME in a config of that kind)", presets or {"(none)": ""}))
    for i, (title, items) in enumerate(sections):
        if i:
            print()
        print(f"{title}:")
        width = max(len(k) for k in items)
        for name, desc in items.items():
            first = str(desc).strip().splitlines()[0] if str(desc).strip() else ""
            print(f"  {name:<{width}}  {first}")
    return 0


def _cmd_show(args) -> int:
    from cfx import experiments

    root = Path(args.result_dir)
    try:
        text = experiments.show(root, args.metrics.split(",") if args.metrics else None)
    except FileNotFoundError:
        _err(f"{root} is not a cfx results folder (no config.yaml); run 'cfx run CONFIG --out {root}' first")
        return 2
    except LookupError as e:
        print(f"{root}: {e.args[0]}; continue with 'cfx run CONFIG --out {root} --resume'")
        return 1
    print(text, end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cfx`` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return {"run": _cmd_run, "list": _cmd_list, "show": _cmd_show}[args.command](args)
    except BrokenPipeError:  # `cfx show DIR | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

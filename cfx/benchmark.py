"""The benchmark grid: data sets x models x generators x runs -> a long-format table.

For every run r and data set: load (seeded), split, standardise (train statistics only).
For every model: train once (seeded; deterministic), draw the factuals, then for every
generator make **one** batched :func:`cfx.generate` call over all factuals and score it with
:func:`cfx.evaluate`. Each finished cell (data set, model, generator, run) is saved as its
own files (see :mod:`cfx.results`), so an interrupted grid resumes where it stopped and
gives the same final table as an uninterrupted one.

Factuals (the documented rule):
  - binary data (target 1 = the favourable class, 0 unfavourable): test points the model
    predicts as 0, target 1;
  - multiclass: test points with a target drawn uniformly from the classes other than the
    model's prediction: t = (ŷ + 1 + u) mod C, u ~ U{0, ..., C - 2};
  - ``n_factuals`` are drawn at random (seeded) from the test split; if it holds too few
    candidates, candidates from the training split fill up the rest (a warning says so).

Seeds: every random choice gets its own seed derived from ``(config.seed, run, labels)`` with
``numpy.random.SeedSequence``, so a cell's numbers depend only on its own identity — adding a
generator to the config does not change the other cells.

Example::

    cfg = cfx.experiment.load_config("configs/benchmark.yaml")
    res = cfx.benchmark.run_grid(cfg, "results/benchmark")
    res.table.head()        # dataset, model, generator, run, metric, value, sd, n
    print(res.summary)      # Markdown: mean ± sd per (dataset, model, generator)
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import yaml

from cfx.experiment import (ConfigError, DataConfig, ExperimentConfig, GeneratorConfig, ModelConfig, dump_config,
                            effective_search, experiment_identity, parse_config)
from cfx.results import Cell, ResultsDir, pooled

__all__ = ["GridResult", "run_grid", "select_factuals", "summarise", "summary_markdown", "TIMING_METRICS",
           "HEADLINE_METRICS"]

# Wall-clock metrics: they differ between two otherwise identical runs.
TIMING_METRICS = ("runtime_s", "runtime_total_s", "compile_s")
# Columns of summary.md when the config does not list its metrics (results.csv has all).
HEADLINE_METRICS = ("validity", "l1", "l2", "mad_l1", "redundancy", "implausibility", "ynn", "violations",
                    "converged", "steps", "runtime_s")
GRID_RESOLUTION = 100  # 2-D figure: p(target | x) on a 100 x 100 grid
MAX_PLOT_POINTS = 1000


@dataclasses.dataclass
class GridResult:
    """What a grid run returns.

    Attributes:
      table: long format, one row per (dataset, model, generator, run, metric): ``value`` the
        mean over that cell's counterfactuals, ``sd`` their sample sd, ``n`` how many.
      summary: Markdown table of mean ± sd pooled over counterfactuals of all runs.
      summary_table: the same numbers, one row per (dataset, model, generator, metric).
      out_dir: the results folder.
      figures: the PNG files written.
    """

    table: pd.DataFrame
    summary: str
    summary_table: pd.DataFrame
    out_dir: Path
    figures: list[Path]


# --------------------------------------------------------------------------------------
# Indirections (tests monkeypatch these)
# --------------------------------------------------------------------------------------


def _generate(*args, **kwargs):
    from cfx.search import generate

    return generate(*args, **kwargs)


def _fit(train, model: ModelConfig, *, seed: int, progress: bool):
    import cfx.models

    return cfx.models.fit(train, model.name, seed=seed, progress=progress, **model.fit_kwargs())


# --------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------


def derive_seed(seed: int, run: int, *labels: str) -> int:
    """A 31-bit seed from ``(seed, run, labels)`` (stable across processes and Python versions)."""
    entropy = [int(seed), int(run)] + [zlib.crc32(str(lab).encode()) for lab in labels]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] & 0x7FFFFFFF)


def _load_split(dc: DataConfig, cfg: ExperimentConfig, run: int):
    import cfx.data

    seed = derive_seed(cfg.seed, run, "data", dc.key)
    data = cfx.data.load(dc.name, n=dc.n, seed=seed, data_dir=dc.data_dir, balance=dc.balance, **dict(dc.options))
    train, test = cfx.data.train_test(data, test_size=dc.test_size, seed=seed, standardize=dc.standardize)
    return train, test


def select_factuals(classifier, test, n: int, seed: int, train=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factuals and targets (see the module docstring for the rule).

    Returns ``(x (m, d), target (m,), index (m,))`` with m <= n; ``index`` counts rows of
    ``test`` first, then rows of ``train`` (offset by ``len(test)``).
    """
    rng = np.random.default_rng(seed)
    n_classes = int(classifier.n_classes)
    pools = [test] + ([train] if train is not None else [])
    X = np.concatenate([p.X for p in pools])
    pred = np.asarray(classifier.predict(X))
    if n_classes == 2:
        candidates = np.flatnonzero(pred == 0)
        targets = np.ones(len(X), np.int32)
    else:
        targets = ((pred + 1 + rng.integers(0, n_classes - 1, size=len(X))) % n_classes).astype(np.int32)
        candidates = np.arange(len(X))
    in_test = candidates[candidates < len(test)]
    in_train = candidates[candidates >= len(test)]
    chosen = rng.permutation(in_test)[:n]
    if len(chosen) < n and len(in_train):
        chosen = np.concatenate([chosen, rng.permutation(in_train)[: n - len(chosen)]])
        warnings.warn(f"{test.name}: only {len(in_test)} test points qualify as factuals; "
                      f"{len(chosen) - len(in_test)} training points fill up to {len(chosen)}", stacklevel=2)
    if len(chosen) < n:
        warnings.warn(f"{test.name}: only {len(chosen)} points qualify as factuals (asked for {n})", stacklevel=2)
    if len(chosen) == 0:
        raise ValueError(f"{test.name}: the model predicts no point as a non-target class, so there are no factuals")
    return X[chosen].astype(np.float32), targets[chosen], chosen.astype(np.int64)


def _make_generator(gc: GeneratorConfig, train, path: str, cfg_file):
    import cfx.generators

    try:
        return cfx.generators.make(gc.name, data=train, **dict(gc.hyperparams))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"cannot build generator {gc.name!r}: {e}", file=cfg_file, path=path) from None


def _probability_grid(classifier, train, resolution: int = GRID_RESOLUTION) -> dict:
    """p(class | x) on a grid spanning the training data, plus a subsample of it, for the 2-D figure."""
    from cfx.plotting import probability_grid

    idx = np.random.default_rng(0).permutation(len(train))[:MAX_PLOT_POINTS]
    return {**probability_grid(classifier, train.X, resolution), "X": train.X[idx], "y": train.y[idx]}


def _cells(cfg: ExperimentConfig) -> list[Cell]:
    return [Cell(d.key, m.key, g.key, r) for d in cfg.data for r in range(cfg.runs) for m in cfg.models
            for g in cfg.generators]


def _evaluate_cell(res, clf, train, constraints, metrics) -> tuple[dict, dict]:
    import cfx.evaluation

    ev = cfx.evaluation.evaluate(res, clf, data=train, constraints=constraints)
    names = list(metrics) if metrics is not None else list(ev["mean"])
    record, per = {}, {}
    for name in names:
        values = ev["per_factual"].get(name)
        n = int(np.isfinite(values).sum()) if values is not None else 1
        sd = ev["sd"].get(name, math.nan)
        record[name] = {"mean": float(ev["mean"][name]), "sd": float(sd), "n": n}
        if values is not None:
            per[f"metric_{name}"] = values
    return record, per


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def _table(results: ResultsDir, cells: Sequence[Cell]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, timings = [], []
    for cell in cells:
        rec = results.load_cell(cell)
        for metric, v in rec["metrics"].items():
            rows.append({"dataset": cell.dataset, "model": cell.model, "generator": cell.generator, "run": cell.run,
                         "metric": metric, "value": v["mean"], "sd": v["sd"], "n": v["n"]})
        timings.append({"dataset": cell.dataset, "model": cell.model, "generator": cell.generator, "run": cell.run,
                        **rec["timings"]})
    cols = ["dataset", "model", "generator", "run", "metric", "value", "sd", "n"]
    return pd.DataFrame(rows, columns=cols), pd.DataFrame(timings)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Pool each (dataset, model, generator, metric) over runs: mean and sd over all their
    counterfactuals (exactly, from each run's mean, sd and n), plus the sd of the run means."""
    keys = ["dataset", "model", "generator", "metric"]
    out = []
    for key, g in table.groupby(keys, sort=False):
        mean, sd, n = pooled(g["value"].tolist(), g["sd"].tolist(), g["n"].astype(int).tolist())
        runs = g["value"].to_numpy(float)
        out.append(dict(zip(keys, key), mean=mean, sd=sd, n=n, runs=len(g),
                        sd_runs=float(np.std(runs, ddof=1)) if len(g) > 1 else math.nan))
    return pd.DataFrame(out, columns=keys + ["mean", "sd", "n", "runs", "sd_runs"])


def _fmt(mean: float, sd: float) -> str:
    if mean is None or math.isnan(mean):
        return "nan"
    return f"{mean:.3g}" if sd is None or math.isnan(sd) else f"{mean:.3g} ± {sd:.2g}"


def summary_markdown(summary: pd.DataFrame, metrics: Sequence[str] | None = None, title: str | None = None) -> str:
    """Markdown pivot: rows (dataset, model, generator), columns metrics, cells ``mean ± sd``."""
    present = list(dict.fromkeys(summary["metric"]))
    cols = [m for m in (metrics or HEADLINE_METRICS) if m in present] or present
    index = list(dict.fromkeys(zip(summary["dataset"], summary["model"], summary["generator"])))
    lookup = {(r.dataset, r.model, r.generator, r.metric): (r.mean, r.sd) for r in summary.itertuples()}
    head = ["dataset", "model", "generator"] + cols
    lines = []
    if title:
        lines += [f"# {title}", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for ix in index:
        cells = [_fmt(*lookup.get((*ix, m), (math.nan, math.nan))) for m in cols]
        lines.append("| " + " | ".join([*ix, *cells]) + " |")
    lines += ["", "mean ± sd over all counterfactuals of all runs; every metric of every cell is in results.csv."]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------------------


def _saved_identity(path: Path) -> dict:
    return experiment_identity(parse_config(yaml.safe_load(path.read_text()), file=path))


def run_grid(config: ExperimentConfig, out_dir: str | Path | None = None, *, resume: bool = False,
             force: bool = False, progress: bool = True) -> GridResult:
    """Run (or resume) the whole grid of ``config`` and write its results folder.

    Args:
      config: a validated :class:`cfx.experiment.ExperimentConfig`.
      out_dir: results folder (default ``config.output_dir``: ``output``, else ``results/<name>``).
      resume: continue a folder of the same experiment; finished cells are skipped.
      force: delete an existing cfx results folder and start over.
      progress: tqdm bars for training and for the cells.

    Raises:
      ConfigError: a generator cannot be built from its hyperparameters (before any training).
      FileNotFoundError: a real data file is missing (its path is named).
      cfx.results.OutputExistsError: the folder holds another experiment (or this one, without
        ``resume``/``force``).
    """
    from tqdm.auto import tqdm

    import flax.serialization

    out_dir = Path(config.output_dir if out_dir is None else out_dir)
    results = ResultsDir(out_dir)
    cells = _cells(config)
    cfg_file = config.source

    # 1. Everything that can fail on bad input fails here: before any training or writing.
    splits = {(dc.key, r): _load_split(dc, config, r) for dc in config.data for r in range(config.runs)}
    for dc in config.data:
        train0 = splits[(dc.key, 0)][0]
        for i, gc in enumerate(config.generators):
            gen = _make_generator(gc, train0, f"generators[{i}]", cfg_file)
            k = effective_search(config, gc)["num_counterfactuals"]
            try:
                gen.validate(int(k), train0.n_features, max(train0.n_classes, 2))
            except ValueError as e:
                hint = f" (set generators[{i}].search.num_counterfactuals)" if "num_counterfactuals" in str(e) else ""
                raise ConfigError(f"{e}{hint}", file=cfg_file, path=f"generators[{i}]") from None

    # 2. Claim the folder.
    results.prepare(dump_config(config), experiment_identity(config), _saved_identity, resume=resume, force=force,
                    n_cells=len(cells))
    pending = [c for c in cells if not results.is_done(c)]
    bar = tqdm(total=len(cells), initial=len(cells) - len(pending), desc=config.name, unit="cell",
               disable=not progress, leave=True)
    try:
        for dc in config.data:
            for r in range(config.runs):
                train, test = splits[(dc.key, r)]
                constraints = train.schema.constraints()
                for mc in config.models:
                    todo = [g for g in config.generators if not results.is_done(Cell(dc.key, mc.key, g.key, r))]
                    if not todo:
                        continue
                    bar.set_postfix_str(f"{dc.key}/{mc.key}/run{r}: training")
                    start = time.perf_counter()
                    clf = _fit(train, mc, seed=derive_seed(config.seed, r, "model", dc.key, mc.key), progress=progress)
                    train_s = time.perf_counter() - start
                    saved = results.load_model_params(dc.key, mc.key, r)
                    if saved is not None:  # resuming: use exactly the model the finished cells used
                        clf = clf.replace(flax.serialization.from_bytes(clf.params, saved))
                    x, target, index = select_factuals(clf, test, config.n_factuals,
                                                       derive_seed(config.seed, r, "factuals", dc.key, mc.key), train)
                    if saved is None:
                        acc = float(np.mean(np.asarray(clf.predict(test.X)) == test.y))
                        plot = _probability_grid(clf, train) if train.n_features == 2 else None
                        results.save_model(dc.key, mc.key, r, flax.serialization.to_bytes(clf.params),
                                           {"train_s": train_s, "test_accuracy": acc, "n_train": len(train),
                                            "n_test": len(test), "n_factuals": int(len(x))}, plot)
                    for gc in todo:
                        cell = Cell(dc.key, mc.key, gc.key, r)
                        bar.set_postfix_str(f"{dc.key}/{mc.key}/{gc.key}/run{r}")
                        gen = _make_generator(gc, train, f"generators[{config.generators.index(gc)}]", cfg_file)
                        search = effective_search(config, gc)
                        res = _generate(gen, clf, x, target, key=_key(config.seed, r, dc.key, mc.key, gc.key),
                                        constraints=constraints, return_path=bool(config.figures and x.shape[1] == 2),
                                        **search)
                        metrics, per = _evaluate_cell(res, clf, train, constraints, config.metrics)
                        std = train.standardizer
                        arrays = dict(factuals=res.factuals, target=res.target, counterfactuals=res.counterfactuals,
                                      converged=res.converged, steps=res.steps, target_probs=res.target_probs,
                                      path=res.path, factual_index=index,
                                      std_mean=None if std is None else std.mean,
                                      std_scale=None if std is None else std.scale, **per)
                        record = {"metrics": metrics, "search": search, "generator": gc.name,
                                  "hyperparams": dict(gc.hyperparams), "n_factuals": int(len(x)),
                                  "timings": {"runtime_s": float(res.runtime_s), "compile_s": float(res.compile_s),
                                              "train_s": train_s}}
                        results.save_cell(cell, record, arrays)
                        bar.update(1)
    finally:
        bar.close()

    # 3. Tables and figures, always from the saved cells (resumed == uninterrupted).
    table, timings = _table(results, cells)
    summary_table = summarise(table)
    summary = summary_markdown(summary_table, config.metrics, title=config.name)
    results.write_tables(table, summary, summary_table, timings)
    figures = _figures(config, results, summary_table) if config.figures else []
    return GridResult(table=table, summary=summary, summary_table=summary_table, out_dir=out_dir,
                      figures=figures)


def _key(seed: int, run: int, *labels: str):
    import jax

    return jax.random.key(derive_seed(seed, run, "generate", *labels))


def _image_shape(name: str, d: int) -> tuple[int, int] | None:
    try:
        import cfx.data
        if cfx.data.info(name).kind != "vision":
            return None
    except (ValueError, KeyError):
        return None
    side = int(round(math.sqrt(d)))
    return (side, side) if side * side == d else None


def _figures(config: ExperimentConfig, results: ResultsDir, summary: pd.DataFrame) -> list[Path]:
    """2-D figures (run 0 of each 2-D data set and model), image grids, one benchmark chart per data set."""
    import matplotlib

    matplotlib.use("Agg")
    from cfx import plotting

    written = []
    for dc in config.data:
        for mc in config.models:
            cells = {g.key: Cell(dc.key, mc.key, g.key, 0) for g in config.generators}
            arrays = {k: results.load_arrays(c) for k, c in cells.items()}
            first = next(iter(arrays.values()))
            d = first["factuals"].shape[1]
            grid = results.load_model_plot(dc.key, mc.key, 0)
            if d == 2 and grid is not None:
                fig = plotting.plot_2d_panels(grid, arrays, title=f"{dc.key} / {mc.key}")
                written.append(plotting.save_figure(fig, results.figure_path(f"{dc.key}_{mc.key}_2d")))
            shape = _image_shape(dc.name, d)
            if shape is not None:
                fig = plotting.plot_image_grid(first["factuals"], {k: a["counterfactuals"][:, 0] for k, a in arrays.items()},
                                               shape, targets=first["target"], title=f"{dc.key} / {mc.key}")
                written.append(plotting.save_figure(fig, results.figure_path(f"{dc.key}_{mc.key}_images")))
        sub = summary[summary["dataset"] == dc.key]
        if len(sub):
            fig = plotting.plot_benchmark(sub, metrics=config.metrics, title=dc.key)
            written.append(plotting.save_figure(fig, results.figure_path(f"{dc.key}_benchmark")))
    return written

"""The benchmark grid (``kind: benchmark``): data sets x models x generators x runs -> a long table.

For every run r and data set: load (seeded), split, standardise (train statistics only).
For every model: train once (seeded; deterministic) — or, resuming, restore its saved
parameters without training — and draw the factuals; then for every generator fit it to
the trained model and the training split, make **one** batched :func:`cfx.generate` call
over all factuals and score it with :func:`cfx.evaluate`. Each finished cell (data set,
model, generator, run) is its own record in the store, so an interrupted grid resumes where
it stopped and gives the same final table as an uninterrupted one.

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

Config (``configs/benchmark.yaml``)::

    kind: benchmark                      # the default
    name: my_benchmark
    data: [{name: moons, n: 2000, noise: 0.2}, {name: gmsc, n: 5000, balance: true}]
    models: [{name: mlp, widths: [64, 64], epochs: 100}, {name: ensemble, n_members: 5}]
    generators:                          # registry names; other keys are the generator's fields
      - generic
      - {name: wachter, cost: 0.5}
      - {name: dice, diversity: 0.2, num_counterfactuals: 3}
      - {name: generic, threshold: 0.9, label: tau09}
    search: {max_steps: 100, batch_size: null}     # the call options of cfx.generate
    metrics: [validity, l1, implausibility]        # default: every metric of cfx.evaluate
    n_factuals: 100
    runs: 3
    seed: 0

Records: ``models/<data>/<model>/run<r>`` (flax msgpack parameters, accuracy, the 2-D
probability grid) and ``cells/<data>/<model>/<generator>/run<r>`` (counterfactuals and
metrics). Report: ``results.csv`` (dataset, model, generator, run, metric, value, sd, n),
``summary.md`` / ``summary.csv`` (mean ± sd pooled over runs), ``timings.csv`` and
``figures/`` (2-D panels, image grids, one chart per data set).
"""

from __future__ import annotations

from cfx.experiments.kinds import Kind
from cfx.experiments.kinds.benchmark.report import (
    HEADLINE_METRICS,
    KEYS,
    TIMING_METRICS,
    BenchmarkReport,
    report,
    show,
    summarise,
    summary_markdown,
)
from cfx.experiments.kinds.benchmark.runner import (
    GRID_RESOLUTION,
    MAX_PLOT_POINTS,
    derive_seed,
    expected,
    check,
    run,
    select_factuals,
)
from cfx.experiments.kinds.benchmark.schema import (
    BenchmarkConfig,
    DataConfig,
    GeneratorConfig,
    ModelConfig,
    SearchConfig,
)

__all__ = [
    "BenchmarkConfig",
    "DataConfig",
    "ModelConfig",
    "GeneratorConfig",
    "SearchConfig",
    "BenchmarkReport",
    "KIND",
    "select_factuals",
    "derive_seed",
    "TIMING_METRICS",
    "HEADLINE_METRICS",
    "KEYS",
    "GRID_RESOLUTION",
    "MAX_PLOT_POINTS",
    "check",
    "run",
    "expected",
    "report",
    "show",
    "summary_markdown",
    "summarise",
]

KIND = Kind.of(
    __name__,
    BenchmarkConfig,
    unit="cell",
    description="data sets x models x generators x runs: train, search, evaluate; a long table of metrics",
)

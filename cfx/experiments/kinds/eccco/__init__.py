"""The ECCCo reproduction (``kind: eccco``; Altmeyer et al., AAAI 2024; SPEC §2–§4).

Data sets x models (MLP, deep ensemble, JEM, JEM ensemble) x generators (Wachter, Schut,
REVISE, ECCCo and its ablations) x runs. Per (data set, model, run): train the model on the
fit part of the training split (seeded), calibrate it on the held-out calibration part
(:func:`cfx.models.calibrate`), draw the model's conditional samples **once**
(:func:`cfx.sampling.conditional_samples`; reused by the unfaithfulness metric and ECCCo-L1);
per generator: fit it, make **one** batched :func:`cfx.generate` call over the factuals and
score it with :func:`cfx.evaluate` in a context holding the samples and q̂ (so
unfaithfulness and set size are reported). Every cell and every model is a record in the
store: an interrupted run resumes where it stopped.

Config (``configs/eccco.yaml``)::

    kind: eccco
    data:
      - {name: moons, n: 2500, generators: {eccco: {energy: 0.2}}}     # per-data-set weights
      - {name: mnist, optional: true, models: {jem: {sgld_steps: 25}}}  # skipped without its files
    models: [{name: mlp, widths: [32, 32]}, {name: jem, alpha: [1, 1, 0.1], sgld_steps: 30}]
    generators: [wachter, schut, revise, eccco, eccco_no_conformal, eccco_no_energy, eccco_plus, eccco_l1]
    calibration: {share: 0.5, alpha: 0.05}
    sampling: {n_chains: 50, steps: 500, keep: 25}
    search: {max_steps: 100}
    n_factuals: 100
    runs: 1

Report: ``summary.md`` (per data set a model x generator table of unfaithfulness,
implausibility, validity, cost and set size, mean ± sd), ``summary.csv``, ``results.csv``,
``models.csv``, ``timings.csv`` and, on 10-class image data, ``figures/<data>_9_to_7.png``.
"""

from __future__ import annotations

from cfx.experiments.kinds import Kind
from cfx.experiments.kinds.eccco.preset import PRESETS
from cfx.experiments.kinds.eccco.report import KEYS, TABLE_METRICS, report, show, summary_markdown
from cfx.experiments.kinds.eccco.runner import available, derive_seed, expected, check, run, select_factuals
from cfx.experiments.kinds.eccco.schema import EcccoConfig

__all__ = [
    "EcccoConfig",
    "KIND",
    "PRESETS",
    "KEYS",
    "TABLE_METRICS",
    "available",
    "derive_seed",
    "expected",
    "check",
    "run",
    "report",
    "select_factuals",
    "show",
    "summary_markdown",
]

KIND = Kind.of(
    __name__,
    EcccoConfig,
    unit="cell",
    description="ECCCo reproduction: models x generators, unfaithfulness, implausibility, set size, 9 -> 7 figure",
)

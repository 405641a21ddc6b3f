"""The paper's numbers (Altmeyer et al., AAAI 2024, appendix tables; read from ECCCo.jl's ``main``
branch), kept as data in ``paper_tables.csv`` next to this module: re-exported by
:mod:`cfx.experiments.kinds.eccco.paper`, which compares ours with them.

The file has one row per (table, data set, generator, model): ``table`` is ``all`` (over all
counterfactuals, ``paper/contents/table-<data>.tex``: the appendix tables rendered on 2023-12-11
from the run whose generator settings are that branch's ``table_gen_params.tex``; the issue's LS
and moons numbers are these) or ``valid`` (valid counterfactuals only, ``table-<data>-valid.tex``);
then unfaithfulness_ref, implausibility, validity (empty: >= 0.99) and cost (L1 distance to the
factual). MNIST's unfaithfulness and implausibility there are SSIM-based
(``distance_from_energy_ssim``, ``distance_from_targets_ssim``), not L2: not comparable with
cfx's L2 ``unfaithfulness_ref``.
"""

from __future__ import annotations

import csv
import io
from importlib import resources

#: The paper's model columns.
MODELS = ("mlp", "ensemble", "jem", "jem_ensemble")
_COLUMNS = ("unfaithfulness_ref", "implausibility", "validity", "cost")


def _load(name: str = "paper_tables.csv") -> dict[str, dict]:
    """table -> (data set, generator) -> per model in :data:`MODELS` order: (unfaithfulness_ref,
    implausibility, validity or None, cost)."""
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    cells: dict[str, dict] = {}
    for row in csv.DictReader(io.StringIO(text)):
        values = tuple(None if row[k] == "" else float(row[k]) for k in _COLUMNS)
        cells.setdefault(row["table"], {}).setdefault((row["dataset"], row["generator"]), {})[row["model"]] = values
    return {table: {key: tuple(per[m] for m in MODELS) for key, per in t.items()} for table, t in cells.items()}


_TABLES = _load()
#: (data set, generator) -> per model (MLP, MLP ensemble, JEM, JEM ensemble): (unfaithfulness_ref,
#: implausibility, validity or None, cost), over all counterfactuals.
PAPER = _TABLES["all"]
#: The same over valid counterfactuals only.
PAPER_VALID = _TABLES["valid"]

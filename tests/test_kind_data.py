"""The data files the ct and eccco kinds ship (the papers' numbers, the presets' per-data-set settings), read
next to their modules (eccco/paper_tables.csv, reference.yaml; ct/paper.json, grids.csv): what the Python literals held."""

from __future__ import annotations

import math

import pytest


def test_eccco_paper_tables_are_the_appendix_tables():
    from cfx.experiments.kinds.eccco.paper import MODELS, PAPER, PAPER_VALID

    assert MODELS == ("mlp", "ensemble", "jem", "jem_ensemble")
    for table, n_none, total in ((PAPER, 84, 2169.86), (PAPER_VALID, 136, 2121.63)):
        assert len(table) == 34 and list(table)[0] == ("linearly_separable", "eccco")
        assert list(table)[-1] == ("mnist", "wachter")
        assert all(len(cells) == 4 and all(len(c) == 4 for c in cells) for cells in table.values())
        values = [v for cells in table.values() for c in cells for v in c]
        assert sum(v is None for v in values) == n_none  # validity >= 0.99
        assert math.fsum(v for v in values if v is not None) == pytest.approx(total, abs=1e-9)
    assert PAPER_VALID[("gmsc", "eccco")][3] == (1.2, 0.78, None, 1.1)
    assert PAPER[("mnist", "revise")][1] == (0.25, 0.3, 0.87, 224.93)
    assert PAPER_VALID[("circles", "revise")][2] == (0.12, 0.43, None, 1.27)
    assert PAPER_VALID[("mnist", "schut")] == (
        (0.25, 0.3, None, 7.88),
        (0.25, 0.29, None, 7.83),
        (0.25, 0.32, None, 6.02),
        (0.25, 0.31, None, 7.2),
    )


def test_ct_paper_table_is_the_main_and_appendix_table():
    from cfx.experiments.kinds.ct.reference import PAPER

    assert list(PAPER)[:4] == ["linearly_separable", "circles", "moons", "overlapping"] and "mnist" in PAPER
    assert PAPER["credit"] == {
        "ip": (10.14, True),
        "ip_star": (50.35, True),
        "cost": (-18.17, True),
        "ip_abs": (19.79, 22.02),
        "validity": (0.72, 1.0),
        "accuracy": (0.71, 0.71),
    }
    assert PAPER["mnist"]["ip_star"] == (-70.31, False) and PAPER["gmsc"]["ip_abs"] == (7.24, 8.10)
    for cells in PAPER.values():  # reductions carry their star, the appendix's pairs are (CT, BL)
        assert all(isinstance(cells[k][1], bool) for k in ("ip", "ip_star", "cost"))
        assert all(type(v) is float for k in ("ip_abs", "validity", "accuracy") if k in cells for v in cells[k])


def test_ct_presets_per_data_set_settings():
    from cfx.experiments.kinds.ct import reference

    for per_data, single in (
        (reference.PER_DATA, reference.SINGLE),
        (reference.PER_DATA_FINAL_RUN, reference.SINGLE_FINAL_RUN),
    ):
        assert list(per_data) == list(single) and len(per_data) == 11 and list(per_data)[-1] == "mnist"
        assert all(len(v) == 6 and type(v[0]) is float and type(v[3]) is int for v in per_data.values())
        assert all(len(v) == 4 and type(v[1]) is float and type(v[3]) is int for v in single.values())
    assert reference.PER_DATA["moons"] == (0.9, 0.25, 0.5, 30, 1000, 250)
    assert reference.PER_DATA["mnist"] == (0.5, 0.01, 0.5, 1000, 5000, 25)
    assert reference.SINGLE["adult"] == (0.75, 0.25, 0.95, 50)
    assert reference.PER_DATA_FINAL_RUN["adult"] == (0.75, 0.1, 0.95, 1000, 5000, 100)
    assert reference.SINGLE_FINAL_RUN["linearly_separable"] == (0.5, 0.25, 0.95, 100)


def test_eccco_scripts_reference_per_data_set():
    from cfx.experiments.kinds.eccco.preset import LS_CENTERS, REFERENCE

    assert list(REFERENCE) == [
        "linearly_separable",
        "moons",
        "circles",
        "california",
        "gmsc",
        "mnist",
        "california_raw",
    ]
    assert REFERENCE["linearly_separable"]["options"] == {"std": 0.1, "centers": LS_CENTERS}
    assert REFERENCE["moons"] == {
        "n": 3125,
        "options": {"noise": 0.1, "yshift": 0.3},
        "model": {"widths": [32, 32, 32], "activation": "relu", "epochs": 500, "batch_size": 128},
        "jem": {"alpha": [1.0, 1.0, 0.1], "sgld_steps": 30, "sampler_batch": 10},
        "search": {"eta": 0.01, "cost": 0.1, "set_size": 0.1, "energy": 0.5, "ridge": 0.0},
    }
    assert REFERENCE["gmsc"]["balance"] is True and REFERENCE["mnist"]["n"] is None
    assert REFERENCE["circles"]["search"]["ridge"] == 1.0 and REFERENCE["california_raw"] is REFERENCE["california"]

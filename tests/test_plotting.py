"""Figures: every plot writes a non-empty PNG of the expected pixel size; plotting takes arrays
and data frames only (the probabilities of a model are computed by the caller)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from cfx import plotting
from cfx.data import Dataset, FeatureSchema


def _png_shape(path):
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(path).shape[:2]  # (height, width)


@pytest.fixture
def linear_result():
    """Hand-made straight-line search paths from class-0 points towards x0 + x1 = 1."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 0.3, size=(5, 2)).astype(np.float32)
    T = 6
    end = x + (1.2 - x.sum(1, keepdims=True)) / 2.0
    steps = np.linspace(0, 1, T + 1)[None, :, None]
    path = (x[:, None] + steps * (end - x)[:, None])[:, None]  # (5, 1, T + 1, 2)
    return {"factuals": x, "target": np.ones(5, np.int32), "counterfactuals": end[:, None], "path": path}


@pytest.fixture
def data2d():
    rng = np.random.default_rng(1)
    X = rng.uniform(-1.5, 2.0, size=(80, 2)).astype(np.float32)
    y = (X.sum(1) > 1).astype(np.int32)
    return Dataset(X, y, FeatureSchema.default(2), name="toy")


def _grid(classifier, X, resolution):
    grid = plotting.mesh_2d(X, resolution)
    return {**grid, "probs": np.asarray(classifier.probs(grid["points"]))}  # (G * G, C): the caller's model


def test_2d_figure(linear_classifier, data2d, linear_result, tmp_path):
    r = linear_result
    fig = plotting.plot_2d(
        _grid(linear_classifier, data2d.X, 40),
        data2d.X,
        data2d.y,
        r["counterfactuals"],
        factuals=r["factuals"],
        paths=r["path"],
        title="generic",
    )
    ax = fig.axes[0]
    # start markers, end stars and the two class scatters are all drawn
    assert len(ax.collections) >= 4 and len(ax.lines) == 5 and ax.get_title() == "generic"
    path = plotting.save_figure(fig, tmp_path / "fig" / "two_d.png")
    assert _png_shape(path) == (500, 600)


def test_mesh_and_probabilities_from_the_caller(linear_classifier, data2d):
    g = plotting.mesh_2d(data2d.X, resolution=7)
    assert g["xx"].shape == (7, 7) and g["points"].shape == (49, 2)
    np.testing.assert_array_equal(g["points"][:, 0].reshape(7, 7), g["xx"])
    probs = np.asarray(linear_classifier.probs(g["points"]))
    expected = 1 / (1 + np.exp(-(g["xx"] + g["yy"] - 1)))
    np.testing.assert_allclose(probs[:, 1].reshape(7, 7), expected, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        plotting.mesh_2d(np.zeros((3, 3)))
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="grid probs"):
        plotting.draw_2d(ax, {**g, "probs": probs[:10]}, data2d.X, data2d.y, np.zeros((1, 2)))
    plt.close(fig)


def test_2d_panels(linear_classifier, data2d, linear_result, tmp_path):
    grid = _grid(linear_classifier, data2d.X, 30)
    grid["probs"] = grid["probs"].reshape(30, 30, 2)  # the saved (G, G, C) form works too
    grid.update(X=data2d.X, y=data2d.y)
    arrays = {name: linear_result for name in ("a", "b", "c", "d")}
    fig = plotting.plot_2d_panels(grid, arrays, title="toy")
    assert [ax.get_title() for ax in fig.axes[:4]] == ["a", "b", "c", "d"]
    assert _png_shape(plotting.save_figure(fig, tmp_path / "p.png")) == (800, 1380)


@pytest.mark.parametrize("side", [8, 28])
def test_image_grid(side, tmp_path):
    rng = np.random.default_rng(0)
    d = side * side
    F = rng.uniform(-1, 1, size=(4, d))
    fig = plotting.plot_image_grid(F, {"generic": F * 0.5, "greedy": -F}, (side, side), targets=[1, 2, 3, 4])
    axes = np.array(fig.axes).reshape(4, 3)
    np.testing.assert_allclose(axes[0, 2].images[0].get_array(), -F[0].reshape(side, side))
    assert axes[0, 1].get_title() == "generic"
    assert _png_shape(plotting.save_figure(fig, tmp_path / "img.png")) == (570, 450)
    with pytest.raises(ValueError, match="image_shape"):
        plotting.plot_image_grid(F, {}, (side + 1, side))


def test_benchmark_chart(tmp_path):
    rows = []
    for model in ("mlp", "ensemble"):
        for gen in ("generic", "wachter", "dice"):
            for metric in ("validity", "l1", "runtime_s"):
                rows.append(
                    {
                        "dataset": "moons",
                        "model": model,
                        "generator": gen,
                        "metric": metric,
                        "mean": len(gen) / 10,
                        "sd": 0.1,
                        "n": 10,
                    }
                )
    fig = plotting.plot_benchmark(pd.DataFrame(rows), title="moons")
    assert [ax.get_title() for ax in fig.axes[:3]] == ["validity", "l1", "runtime_s"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["generic", "wachter", "dice"]
    assert _png_shape(plotting.save_figure(fig, tmp_path / "b.png")) == (360, 1080)
    fig = plotting.plot_benchmark(pd.DataFrame(rows), metrics=["l1"])
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["l1"]
    plotting.save_figure(fig, tmp_path / "c.png")
    png = plotting.figure_png(plotting.plot_benchmark(pd.DataFrame(rows), metrics=["l1", "nope"]))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_importing_and_plotting_leave_the_users_backend_alone():
    import os
    import subprocess
    import sys

    code = (
        "import matplotlib, numpy as np, cfx.plotting as P\n"
        "grid = P.mesh_2d(np.random.default_rng(0).normal(size=(20, 2)))\n"
        "grid['probs'] = np.full((len(grid['points']), 2), 0.5)\n"
        "P.figure_png(P.plot_2d(grid, np.zeros((2, 2)), np.array([0, 1]), np.zeros((2, 1, 2))))\n"
        "print(matplotlib.get_backend())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MPLBACKEND": "svg"},
    )
    assert out.stdout.strip() == "svg"


def test_pca_plane_figure(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 4)).astype(np.float32) * np.array([3.0, 1.0, 0.3, 0.1], np.float32)
    grid = plotting.mesh_pca(X, resolution=20)
    assert grid["inputs"].shape == (400, 4)
    np.testing.assert_allclose(np.abs(grid["pca"]["components"][0]), [1, 0, 0, 0], atol=0.1)  # the widest axis first
    w = np.array([1.0, 1.0, 0.0, 0.0], np.float32)
    p1 = 1 / (1 + np.exp(-(grid["inputs"] @ w)))
    grid["probs"] = np.stack([1 - p1, p1], 1)
    paths = np.linspace(X[:3], X[:3] + 2.0, 5).transpose(1, 0, 2)[:, None]  # (3, 1, 5, 4)
    fig = plotting.plot_pca(
        grid, X, (X @ w > 0).astype(int), paths[:, :, -1], paths=paths, feature_names=["income", "age", "hours", "debt"]
    )
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("PC1 (") and "income" in ax.get_xlabel()
    with pytest.raises(ValueError, match="feature_names"):
        plotting.plot_pca(grid, X, X[:, 0] > 0, X[:2], feature_names=["a"])
    assert _png_shape(plotting.save_figure(fig, tmp_path / "pca.png")) == (550, 700)


def test_what_changed_chart(tmp_path):
    facts = pd.DataFrame({"age": [30, 41], "job": ["a", "b"], "hours": [40, 20]}, index=[7, 9])
    cfs = pd.DataFrame(
        {"age": [35, 30, 41, 41], "job": ["a", "b", "a", "b"], "hours": [40, 40, 30, 10]},
        index=pd.MultiIndex.from_product([[7, 9], [0, 1]], names=["id", "cf"]),
    )
    cfs["valid"] = [True, True, True, False]
    cfs["p_target"] = [0.8, 0.7, 0.6, 0.4]
    cfs["changed"] = [("age",), ("job",), ("job", "hours"), ("hours",)]
    cfs.attrs["factuals"] = facts
    fig = plotting.plot_changes(cfs)
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == ["20 → 10", "20 → 30", "30 → 35", "a → b", "b → a"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["age", "job", "hours"]
    assert fig.axes[0].get_yticklabels()[3].get_text().endswith("✗")
    with pytest.raises(ValueError, match="output of cfx.explain"):
        plotting.plot_changes(facts)
    assert _png_shape(plotting.save_figure(fig, tmp_path / "changes.png"))[0] > 100

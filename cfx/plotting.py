"""Figures (matplotlib ``Figure`` objects, PNG) from arrays and data frames only.

It never touches pyplot or the user's backend: every figure is a standalone
``matplotlib.figure.Figure`` (shown by a notebook like any other, saved with :func:`save_figure`).

Nothing here calls a model: the caller evaluates its classifier on the points of
:func:`mesh_2d` and hands the probabilities over, so plotting works the same for a live
model, saved results, or any other source of numbers.

- 2-D: filled contour of p(target | x) over a grid, data coloured by class, counterfactual
  paths with start (circle) and end (star) marked — :func:`plot_2d` (one search) and
  :func:`plot_2d_panels` (one panel per generator); both draw with :func:`draw_2d`.
- d > 2: the same picture on the data's first two principal components — :func:`mesh_pca`
  (the plane's grid, mapped back to d features for the caller's model) and :func:`plot_pca`.
- tables: what each counterfactual of :func:`cfx.explain` changes, old -> new per feature —
  :func:`plot_changes`.
- images: factual -> counterfactual per generator, for 8x8 digits or 28x28 MNIST —
  :func:`plot_image_grid`.
- benchmark: mean ± sd per generator for each metric, grouped by model — :func:`plot_benchmark`.

Example::

    res = cfx.generate(gen, clf, x, 1, key=key, return_path=True)
    grid = cfx.plotting.mesh_2d(train.X)
    grid["probs"] = clf.probs(grid["points"])
    fig = cfx.plotting.plot_2d(grid, train.X, train.y, res.counterfactuals, factuals=res.factuals,
                               paths=res.path, target=1)
    cfx.plotting.save_figure(fig, "figures/moons.png")
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from cfx._charts import (
    _CLASS_COLOURS,
    _subplots,
    figure_png,
    plot_benchmark,
    plot_changes,
    plot_image_grid,
    save_figure,
)

__all__ = [
    "mesh_2d",
    "draw_2d",
    "plot_2d",
    "plot_2d_panels",
    "pca_2d",
    "mesh_pca",
    "plot_pca",
    "plot_changes",
    "plot_image_grid",
    "plot_benchmark",
    "figure_png",
    "save_figure",
]

MAX_PATHS = 50


# --------------------------------------------------------------------------------------
# 2-D
# --------------------------------------------------------------------------------------


def mesh_2d(X: np.ndarray, resolution: int = 100, margin: float = 0.1) -> dict:
    """A G x G grid spanning ``X`` (n, 2) with a ``margin`` (share of the range) on each side.

    Returns ``{"xx", "yy"}`` (G, G) and ``"points"`` (G * G, 2) float32, row-major: evaluate
    a model there and store its probabilities as ``"probs"`` ((G * G, C) or (G, G, C)).
    """
    X = np.asarray(X, np.float32)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X must have shape (n, 2) for a 2-D figure; got {X.shape}")
    lo, hi = X.min(0), X.max(0)
    pad = margin * (hi - lo + 1e-6)
    xx, yy = np.meshgrid(
        np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution, dtype=np.float32),
        np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution, dtype=np.float32),
    )
    return {"xx": xx, "yy": yy, "points": np.stack([xx.ravel(), yy.ravel()], 1)}


def _grid_probs(grid: Mapping) -> np.ndarray:
    xx = np.asarray(grid["xx"])
    probs = np.asarray(grid["probs"])
    if probs.ndim == 2 and probs.shape[0] == xx.size:  # (G * G, C) from the mesh's points
        probs = probs.reshape(*xx.shape, -1)
    if probs.ndim != 3 or probs.shape[:2] != xx.shape:
        raise ValueError(f"grid probs must have shape {xx.shape + (-1,)} or ({xx.size}, C); got {probs.shape}")
    return probs


def draw_2d(
    ax,
    grid: Mapping,
    X: np.ndarray,
    y: np.ndarray,
    counterfactuals: np.ndarray,
    *,
    factuals=None,
    paths=None,
    target: int = 1,
    max_paths: int = MAX_PATHS,
    colorbar: bool = True,
):
    """Draw one 2-D panel on ``ax``.

    Args:
      grid: ``{"xx", "yy", "probs"}``: the mesh of :func:`mesh_2d` and a model's p(class | x)
        on it; the contour shows p(target | x) = probs[..., target].
      X, y: data points (n, 2) and labels, coloured by class.
      counterfactuals: (m, K, 2) or (m, 2) end points (stars).
      factuals: (m, 2) start points (circles); taken from ``paths`` when given.
      paths: (m, K, T + 1, 2) search paths (lines); frozen tails are drawn once.
      target: the class whose probability is contoured.
      max_paths: draw at most this many factuals (the first ones).

    Returns the contour set (for a shared colorbar).
    """
    probs = _grid_probs(grid)
    cs = ax.contourf(
        grid["xx"],
        grid["yy"],
        probs[..., target],
        levels=np.linspace(0, 1, 11),
        cmap="RdBu_r",
        alpha=0.55,
        vmin=0,
        vmax=1,
    )
    if colorbar:
        ax.figure.colorbar(cs, ax=ax, label=f"p(y={target} | x)")
    X, y = np.asarray(X), np.asarray(y)
    for c in np.unique(y):
        m = y == c
        ax.scatter(
            X[m, 0],
            X[m, 1],
            s=8,
            color=_CLASS_COLOURS[int(c) % 10],
            alpha=0.5,
            label=f"class {int(c)}",
            edgecolors="none",
        )
    cf = np.asarray(counterfactuals)
    cf = cf[:, None] if cf.ndim == 2 else cf
    m = min(len(cf), max_paths)
    if paths is not None:
        P = np.asarray(paths)[:m]
        for i in range(m):
            for k in range(P.shape[1]):
                path = P[i, k]
                # drop the frozen tail (repeated final point) so the line ends where the search stopped
                moved = np.flatnonzero(np.any(np.abs(np.diff(path, axis=0)) > 0, axis=1))
                path = path[: (moved[-1] + 2) if len(moved) else 1]
                ax.plot(path[:, 0], path[:, 1], color="k", lw=0.7, alpha=0.6)
        factuals = P[:, 0, 0]
    if factuals is not None:
        F = np.asarray(factuals)[:m]
        ax.scatter(
            F[:, 0],
            F[:, 1],
            marker="o",
            s=28,
            facecolors="white",
            edgecolors="k",
            linewidths=1.0,
            label="factual",
            zorder=3,
        )
    E = cf[:m].reshape(-1, 2)
    ax.scatter(
        E[:, 0],
        E[:, 1],
        marker="*",
        s=70,
        color="gold",
        edgecolors="k",
        linewidths=0.6,
        label="counterfactual",
        zorder=4,
    )
    ax.set_xlim(float(np.min(grid["xx"])), float(np.max(grid["xx"])))
    ax.set_ylim(float(np.min(grid["yy"])), float(np.max(grid["yy"])))
    return cs


def plot_2d(
    grid: Mapping,
    X: np.ndarray,
    y: np.ndarray,
    counterfactuals: np.ndarray,
    *,
    factuals=None,
    paths=None,
    target: int = 1,
    max_paths: int = MAX_PATHS,
    title: str | None = None,
    ax=None,
):
    """The 2-D figure of one search: contour of p(target | x), the data, the counterfactuals
    and (given ``paths``, e.g. ``res.path`` of a search with ``return_path=True``) their
    search paths. Arguments as in :func:`draw_2d`. Returns the Figure."""
    fig, ax = _subplots(figsize=(6, 5)) if ax is None else (ax.figure, ax)
    draw_2d(ax, grid, X, y, counterfactuals, factuals=factuals, paths=paths, target=target, max_paths=max_paths)
    ax.set_title(title or "counterfactuals")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return fig


def plot_2d_panels(
    grid: Mapping, arrays_by_generator: Mapping[str, Mapping], *, title: str | None = None, max_paths: int = MAX_PATHS
):
    """One 2-D panel per generator from saved arrays (``grid`` with ``X``, ``y``; per generator
    ``factuals``, ``counterfactuals``, ``target`` and optionally ``path``). Returns the Figure."""
    names = list(arrays_by_generator)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = _subplots(rows, cols, figsize=(4.6 * cols, 4.0 * rows), squeeze=False)
    cs = None
    for ax, name in zip(axes.ravel(), names):
        a = arrays_by_generator[name]
        target = int(np.bincount(np.asarray(a["target"])).argmax())
        cs = draw_2d(
            ax,
            grid,
            grid["X"],
            grid["y"],
            a["counterfactuals"],
            factuals=a["factuals"],
            paths=a.get("path"),
            target=target,
            max_paths=max_paths,
            colorbar=False,
        )
        ax.set_title(name)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 0.93, 1))
    cax = fig.add_axes((0.94, 0.15, 0.012, 0.7))
    fig.colorbar(cs, cax=cax, label="p(target | x)")
    return fig


# --------------------------------------------------------------------------------------
# d > 2: a PCA plane
# --------------------------------------------------------------------------------------


def pca_2d(X: np.ndarray) -> dict:
    """The first two principal components of ``X`` (n, d): ``{"mean" (d,), "components" (2, d)
    (unit rows), "explained" (2,) (share of the variance)}``; z = (x − mean) · componentsᵀ."""
    X = np.asarray(X, np.float64)
    if X.ndim != 2 or X.shape[1] < 2:
        raise ValueError(f"X must be (n, d) with d >= 2; got shape {X.shape}")
    mean = X.mean(0)
    _, sv, vt = np.linalg.svd(X - mean, full_matrices=False)
    var = sv**2
    return {
        "mean": mean.astype(np.float32),
        "components": vt[:2].astype(np.float32),
        "explained": (var[:2] / max(var.sum(), 1e-30)).astype(np.float32),
    }


def _project(pca: Mapping, A) -> np.ndarray:
    A = np.asarray(A, np.float32)
    return (A - pca["mean"]) @ pca["components"].T


def mesh_pca(X: np.ndarray, resolution: int = 100, margin: float = 0.1) -> dict:
    """:func:`mesh_2d` on the plane of ``X``'s first two principal components. Besides ``xx``,
    ``yy``, ``points`` (G·G, 2) it holds ``inputs`` (G·G, d), the points mapped back to the d
    features (x = mean + z · components): evaluate the model there and store ``"probs"``. The
    contour is the model on that plane through the data's mean; data and counterfactuals are
    projected onto it orthogonally, so their off-plane parts are not shown."""
    pca = pca_2d(X)
    grid = mesh_2d(_project(pca, X), resolution, margin)
    grid["inputs"] = (pca["mean"] + grid["points"] @ pca["components"]).astype(np.float32)
    grid["pca"] = pca
    return grid


def _pc_label(pca: Mapping, i: int, names, top: int = 3) -> str:
    w = pca["components"][i]
    order = np.argsort(-np.abs(w))[:top]
    terms = ", ".join(f"{w[j]:+.2f} {names[j]}" for j in order)
    return f"PC{i + 1} ({100 * pca['explained'][i]:.0f} %): {terms}"


def plot_pca(
    grid: Mapping,
    X: np.ndarray,
    y: np.ndarray,
    counterfactuals: np.ndarray,
    *,
    factuals=None,
    paths=None,
    target: int = 1,
    feature_names: Sequence[str] | None = None,
    max_paths: int = MAX_PATHS,
    title: str | None = None,
    ax=None,
):
    """:func:`plot_2d` for d > 2 on the plane of :func:`mesh_pca` (``grid`` with its ``probs``):
    data (n, d), counterfactuals (m, [K,] d), factuals (m, d) and paths (m, K, T + 1, d) are
    projected onto the first two principal components; each axis is named by its share of the
    variance and its three largest loadings (``feature_names``, default x0, x1, ...)."""
    pca = grid["pca"]
    d = pca["mean"].shape[0]
    names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(d)]
    if len(names) != d:
        raise ValueError(f"feature_names has {len(names)} names; the data have {d} features")
    fig, ax = _subplots(figsize=(7, 5.5)) if ax is None else (ax.figure, ax)
    draw_2d(
        ax,
        grid,
        _project(pca, X),
        y,
        _project(pca, counterfactuals),
        factuals=None if factuals is None else _project(pca, factuals),
        paths=None if paths is None else _project(pca, paths),
        target=target,
        max_paths=max_paths,
    )
    ax.set_xlabel(_pc_label(pca, 0, names), fontsize=8)
    ax.set_ylabel(_pc_label(pca, 1, names), fontsize=8)
    ax.set_title(title or "counterfactuals (PCA plane)")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return fig

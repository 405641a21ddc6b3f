"""plotting's standalone Figures (no pyplot: :func:`figure_png`, :func:`save_figure`) and its charts that are not
planes: :func:`plot_changes`, :func:`plot_image_grid`, :func:`plot_benchmark`. Re-exported by :mod:`cfx.plotting`.

Like :mod:`cfx.plotting`, it takes arrays and data frames only and imports no other part of cfx.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

_CLASS_COLOURS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def figure_png(fig, dpi: int = 100) -> bytes:
    """``fig`` as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _subplots(rows: int = 1, cols: int = 1, **options):
    """``plt.subplots`` without pyplot: a standalone Figure, so no backend is chosen or changed."""
    figsize = options.pop("figsize", None)
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, **options)


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write ``fig`` as PNG to ``path`` (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(figure_png(fig, dpi))
    return path


# --------------------------------------------------------------------------------------
# What changed (cfx.explain's output)
# --------------------------------------------------------------------------------------

_UP, _DOWN, _LEVEL, _SAME = "#2ca02c", "#d62728", "#1f77b4", "#f2f2f2"


def _short(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(v)


def plot_changes(frame, *, max_rows: int = 20, max_columns: int = 12, title: str | None = None):
    """What each counterfactual of :func:`cfx.explain` changes: one row per counterfactual (its
    id, cf number, p(target), ✗ if not valid), one column per feature that any shown
    counterfactual changes; a changed cell reads ``old → new``, green where the value rises,
    red where it falls, blue for another level; unchanged cells are blank. Reads the frame's
    ``changed``, ``p_target``, ``valid`` columns and ``frame.attrs["factuals"]``. Returns the Figure."""
    if "factuals" not in frame.attrs or "changed" not in frame:
        raise ValueError(
            "frame must be the output of cfx.explain (columns 'changed', 'p_target', 'valid' and attrs['factuals'])"
        )
    facts = frame.attrs["factuals"]
    shown = frame.head(max_rows)
    order = list(facts.columns)
    used = {c for row in shown["changed"] for c in row}
    cols = [c for c in order if c in used][:max_columns]
    n, m = len(shown), max(len(cols), 1)
    colours = np.full((n, m, 3), 0.0)
    colours[:] = np.array([int(_SAME[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    fig, ax = _subplots(figsize=(2.0 + 1.5 * m, 1.2 + 0.38 * n))
    for i, ((rid, k), row) in enumerate(shown.iterrows()):
        old = facts.loc[rid]
        for j, c in enumerate(cols):
            if c not in row["changed"]:
                continue
            a, b = old[c], row[c]
            numeric = isinstance(a, (int, float, np.number)) and isinstance(b, (int, float, np.number))
            hue = (_UP if b > a else _DOWN) if numeric else _LEVEL
            colours[i, j] = [int(hue[q : q + 2], 16) / 255 * 0.45 + 0.55 for q in (1, 3, 5)]  # a light tint
            ax.text(j, i, f"{_short(a)} → {_short(b)}", ha="center", va="center", fontsize=7)
    ax.imshow(colours, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(cols, rotation=30, ha="right", fontsize=8)
    labels = [
        f"{rid} / cf {k}   p={row['p_target']:.2f}{'' if row['valid'] else ' ✗'}" for (rid, k), row in shown.iterrows()
    ]
    ax.set_yticks(range(n))
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xticks(np.arange(-0.5, m), minor=True)
    ax.set_yticks(np.arange(-0.5, n), minor=True)
    ax.grid(which="minor", color="white", lw=1.5)
    ax.tick_params(which="minor", length=0)
    more = f" (first {n} of {len(frame)})" if len(frame) > n else ""
    ax.set_title((title or "what each counterfactual changes") + more, fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------


def plot_image_grid(
    factuals: np.ndarray,
    counterfactuals: Mapping[str, np.ndarray],
    image_shape: Sequence[int],
    *,
    n_rows: int = 6,
    targets=None,
    title: str | None = None,
    vmin: float = -1.0,
    vmax: float = 1.0,
):
    """Rows: examples; columns: the factual, then the counterfactual of each generator (or model).

    Args:
      factuals: (n, d) flattened images with d = prod(image_shape).
      counterfactuals: label -> (n, d) counterfactuals (one per factual).
      image_shape: (height, width), e.g. (8, 8) for digits or (28, 28) for MNIST.
      targets: (n,) target classes, shown in the row labels.
      vmin, vmax: the pixel range (cfx's image sets use [-1, 1]).
    """
    F = np.asarray(factuals)
    h, w = int(image_shape[0]), int(image_shape[1])
    if F.ndim != 2 or F.shape[1] != h * w:
        raise ValueError(f"factuals must have shape (n, {h * w}) for image_shape {tuple(image_shape)}; got {F.shape}")
    n = min(n_rows, len(F))
    labels = list(counterfactuals)
    cols = 1 + len(labels)
    fig, axes = _subplots(n, cols, figsize=(1.3 * cols + 0.6, 1.3 * n + 0.5), squeeze=False)
    for i in range(n):
        imgs = [F[i]] + [np.asarray(counterfactuals[k])[i] for k in labels]
        for j, img in enumerate(imgs):
            ax = axes[i, j]
            ax.imshow(np.asarray(img).reshape(h, w), cmap="gray", vmin=vmin, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title("factual" if j == 0 else labels[j - 1], fontsize=8)
        if targets is not None:
            axes[i, 0].set_ylabel(f"-> {int(np.asarray(targets)[i])}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------
# Benchmark chart
# --------------------------------------------------------------------------------------


def plot_benchmark(summary, metrics: Sequence[str] | None = None, *, title: str | None = None, max_metrics: int = 8):
    """Mean ± sd per generator for each metric (one panel each), points grouped by model.

    Args:
      summary: a DataFrame with columns model, generator, metric, mean, sd (e.g. the pooled
        summary of a benchmark run, for one data set).
      metrics: which metrics, in order (those absent are skipped; default: every metric of
        ``summary``), at most ``max_metrics``.
    """
    present = list(dict.fromkeys(summary["metric"]))
    chosen = [m for m in (metrics or present) if m in present] or present
    chosen = chosen[:max_metrics]
    generators = list(dict.fromkeys(summary["generator"]))
    models = list(dict.fromkeys(summary["model"]))
    cols = min(4, len(chosen))
    rows = math.ceil(len(chosen) / cols)
    fig, axes = _subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows + 0.6), squeeze=False)
    width = 0.7 / max(1, len(models))
    x = np.arange(len(generators))
    for ax, metric in zip(axes.ravel(), chosen):
        sub = summary[summary["metric"] == metric]
        for j, model in enumerate(models):
            s = sub[sub["model"] == model].set_index("generator").reindex(generators)
            offset = (j - (len(models) - 1) / 2) * width
            ax.errorbar(
                x + offset,
                s["mean"].to_numpy(float),
                yerr=np.nan_to_num(s["sd"].to_numpy(float)),
                fmt="o",
                capsize=3,
                ms=5,
                color=_CLASS_COLOURS[j % 10],
                label=model,
            )
        ax.set_xticks(x)
        ax.set_xticklabels(generators, rotation=40, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes.ravel()[len(chosen) :]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, title="model")
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    return fig

"""``summary_table``: a short aligned text table of evaluate() results."""

from __future__ import annotations

import math
from typing import Mapping

from cfx.evaluation import registry


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan"
    return f"{v:.4g}"


def summary_table(metrics: Mapping, keys=None) -> str:
    """A short aligned text table of ``mean ± sd`` per metric.

    Args:
      metrics: the dict returned by :func:`cfx.evaluate`, or a mapping ``label -> that dict``
        (one column per label, e.g. one per generator).
      keys: metric names to show; default: the headline metrics of the ``"evaluate"`` table
        (:func:`~cfx.evaluation.registry.headline_metrics`: validity, costs, redundancy,
        plausibility, violations, convergence, runtime) that are present; ``"all"``: every metric present. Mean-only entries are shown without ± sd.

    Example::

        >>> print(summary_table(cfx.evaluate(res, clf, data=train)))   # doctest: +SKIP
        metric          value
        validity        0.98 ± 0.1414
        l1              1.234 ± 0.5021
        ...
    """
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"metrics must be the dict returned by cfx.evaluate (or label -> such dicts), got {type(metrics).__name__}"
        )
    columns = {"value": metrics} if "mean" in metrics else dict(metrics)
    for label, col in columns.items():
        if not isinstance(col, Mapping) or "mean" not in col:
            raise ValueError(f"metrics[{label!r}] is not an evaluate() result (no 'mean' entry)")
    present = set().union(*(col["mean"].keys() for col in columns.values()))
    known = [m.name for m in registry.registered()]
    if keys is None:
        keys = [name for name in registry.headline_metrics("evaluate") if name in present]
    elif keys == "all":
        keys = [k for k in known if k in present] + sorted(present - set(known))
    rows = [["metric", *map(str, columns)]]
    for key in keys:
        row = [key]
        for col in columns.values():
            mean = col["mean"].get(key)
            if mean is None:
                row.append("-")
                continue
            sd = col.get("sd", {}).get(key)  # mean-only entries have no sd
            cell = _fmt(mean)
            if sd is not None and not math.isnan(sd):
                cell += f" ± {_fmt(sd)}"
            row.append(cell)
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)

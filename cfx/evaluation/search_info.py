"""What the search itself reports (result-level metrics, read on the host).

Per counterfactual: ``converged``, ``steps``, ``outcome`` (when the result has one) and
``runtime_s`` = result.runtime_s / (n K). Once per result (``"mean"`` only):
``runtime_total_s``, ``compile_s`` and ``threshold``. Result scalars may be Python floats or
array leaves; they are read with ``float(...)``.
"""

from __future__ import annotations

import numpy as np

from cfx.evaluation.registry import Metric, register


def _per_counterfactual(field: str):
    def read(result, ctx):
        value = getattr(result, field, None)
        return None if value is None else np.asarray(value, np.float64)

    read.__name__ = f"read_{field}"
    return read


def runtime_per_counterfactual(result, ctx) -> np.ndarray:
    """Search wall-clock seconds spread evenly over the n K counterfactuals."""
    n, K = result.counterfactuals.shape[:2]
    return np.full((n, K), float(result.runtime_s) / (n * K))


def _scalar(field: str):
    def read(result, ctx):
        value = getattr(result, field, None)
        return None if value is None else float(value)

    read.__name__ = f"read_{field}"
    return read


for _name, _fn, _headline, _desc in (
    (
        "converged",
        _per_counterfactual("converged"),
        True,
        "the search's convergence rule held at the final point (from the result)",
    ),
    (
        "steps",
        _per_counterfactual("steps"),
        True,
        "optimisation steps taken before the counterfactual froze (from the result)",
    ),
    (
        "outcome",
        _per_counterfactual("outcome"),
        False,
        "search outcome code: 0 converged, 1 hit max_steps, 2 refused a non-finite step, 3 not reached, "
        "4 unchanged (out of steps, x' still the factual) "
        "(from the result, when it has one)",
    ),
    (
        "runtime_s",
        runtime_per_counterfactual,
        True,
        "search wall-clock seconds per counterfactual: result.runtime_s / (n K)",
    ),
    ("runtime_total_s", _scalar("runtime_s"), False, "search wall-clock seconds for the whole batch (mean only)"),
    ("compile_s", _scalar("compile_s"), True, "seconds spent compiling the search (mean only)"),
    ("threshold", _scalar("threshold"), False, "the decision threshold tau the result was searched with (mean only)"),
):
    register(Metric(_name, _fn, level="result", description=_desc, headline=_headline))

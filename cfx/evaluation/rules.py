"""Metrics of rule-based recourse (Bewley et al., ICML 2024, "Counterfactual Metarules for Local
and Global Recourse", T-CREx; the poster's definitions), registered at level ``"population"``:
computed by the code that holds the rules (:mod:`cfx.global_rules`, ``experiments/tcrex_paper.py``),
not by ``cfx.evaluate``.

A rule R is a box ``lower < x <= upper`` (±inf: the feature is not tested). Each factual x_i
(n, d) is recommended one rule ``assigned[i]`` (−1: none; its values are NaN). Over evaluation
rows X (N, d) (the paper: the test split) and hit = 1[f(X) = y⁺]:

- ``rule_accuracy``: τ(R) = |{j: X_j ∈ R, hit_j}| / |{j: X_j ∈ R}| (NaN for an empty rule);
- ``rule_feasibility``: ρ(R) = |{j: X_j ∈ R}| / N;
- ``rule_changes`` (the paper's sparsity): the number of features x_i lies outside R on, the
  changes recourse asks for (0 when x_i already lies in R);
- ``rule_complexity``: the number of features R tests (its terms);
- ``rule_consistency``: the number of distinct rules recommended over the factuals that got
  one, divided by their number (1/n: one rule for all; 1: a rule per factual).

:func:`rule_metrics` computes all five at once; each function below is one of them.
"""

from __future__ import annotations

import numpy as np

from cfx.evaluation.registry import Metric, register

__all__ = ["rule_metrics", "rule_accuracy", "rule_feasibility", "rule_changes", "rule_complexity", "rule_consistency"]


def _boxes(lower, upper):
    lower, upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    if lower.ndim != 2 or lower.shape != upper.shape:
        raise ValueError(f"lower and upper must both have shape (m, d); got {lower.shape} and {upper.shape}")
    return lower, upper


def _assigned(assigned, m: int) -> np.ndarray:
    a = np.asarray(assigned)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer) or np.any((a < -1) | (a >= m)):
        raise ValueError(f"assigned must be a 1-D int array of rule indices in -1..{m - 1}")
    return a


def _per_rule(values: np.ndarray, a: np.ndarray) -> np.ndarray:
    """(n,) the rule's value for each factual; NaN where none was assigned."""
    return np.where(a >= 0, values[np.maximum(a, 0)], np.nan) if len(values) else np.full(len(a), np.nan)


def _inside(X, lower, upper) -> np.ndarray:
    """(N, m) row j lies in box k (one pass per feature bounds memory to N·m)."""
    X = np.asarray(X, np.float64)
    out = np.ones((X.shape[0], lower.shape[0]), bool)
    for f in range(X.shape[1]):
        out &= (X[:, f : f + 1] > lower[None, :, f]) & (X[:, f : f + 1] <= upper[None, :, f])
    return out


def rule_accuracy(lower, upper, assigned, X, hit) -> np.ndarray:
    """(n,) τ(R) on (X, hit) of each factual's rule: the share of the rows inside it with hit."""
    lower, upper = _boxes(lower, upper)
    member = _inside(X, lower, upper)
    count = member.sum(0)
    acc = np.where(count > 0, (member & np.asarray(hit, bool)[:, None]).sum(0) / np.maximum(count, 1), np.nan)
    return _per_rule(acc, _assigned(assigned, len(lower)))


def rule_feasibility(lower, upper, assigned, X) -> np.ndarray:
    """(n,) ρ(R) on X of each factual's rule: the share of the rows inside it."""
    lower, upper = _boxes(lower, upper)
    return _per_rule(_inside(X, lower, upper).mean(0), _assigned(assigned, len(lower)))


def rule_changes(x, lower, upper, assigned) -> np.ndarray:
    """(n,) the number of features x_i must change to enter its rule (the paper's sparsity)."""
    lower, upper = _boxes(lower, upper)
    a = _assigned(assigned, len(lower))
    x = np.asarray(x, np.float64)
    if x.shape != (len(a), lower.shape[1]):
        raise ValueError(f"x must have shape ({len(a)}, {lower.shape[1]}) (one row per assigned entry); got {x.shape}")
    if not len(lower):  # no rule at all: nothing was assigned
        return np.full(len(a), np.nan)
    lo, hi = lower[np.maximum(a, 0)], upper[np.maximum(a, 0)]
    changes = ((x <= lo) | (x > hi)).sum(1).astype(np.float64)
    return np.where(a >= 0, changes, np.nan)


def rule_complexity(lower, upper, assigned) -> np.ndarray:
    """(n,) the number of features each factual's rule tests (finite lower or upper bound)."""
    lower, upper = _boxes(lower, upper)
    terms = (np.isfinite(lower) | np.isfinite(upper)).sum(1).astype(np.float64)
    return _per_rule(terms, _assigned(assigned, len(lower)))


def rule_consistency(assigned) -> float:
    """Distinct rules recommended / factuals that got one (NaN when none did)."""
    a = np.asarray(assigned)
    got = a[a >= 0]
    return float(len(np.unique(got)) / len(got)) if len(got) else float("nan")


def rule_metrics(x, lower, upper, assigned, X, hit) -> dict:
    """All five (module docstring): per-factual (n,) arrays and the scalar ``rule_consistency``."""
    return {
        "rule_accuracy": rule_accuracy(lower, upper, assigned, X, hit),
        "rule_feasibility": rule_feasibility(lower, upper, assigned, X),
        "rule_changes": rule_changes(x, lower, upper, assigned),
        "rule_complexity": rule_complexity(lower, upper, assigned),
        "rule_consistency": rule_consistency(assigned),
    }


for _name, _fn, _desc in (
    (
        "rule_accuracy",
        rule_accuracy,
        "rules (T-CREx): share of evaluation rows inside the recommended rule that the model labels the target",
    ),
    ("rule_feasibility", rule_feasibility, "rules (T-CREx): share of evaluation rows inside the recommended rule"),
    (
        "rule_changes",
        rule_changes,
        "rules (T-CREx): features the factual must change to enter its rule (Bewley et al.'s sparsity; 0 inside)",
    ),
    ("rule_complexity", rule_complexity, "rules (T-CREx): number of features the recommended rule tests"),
    ("rule_consistency", rule_consistency, "rules (T-CREx): distinct recommended rules / factuals given one"),
):
    register(Metric(_name, _fn, level="population", description=_desc))

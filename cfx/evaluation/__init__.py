"""Evaluation of counterfactuals: validity, cost, redundancy, plausibility, constraint
violations and runtime (SPEC §4).

``cfx.evaluate(result, classifier, data)`` returns per-counterfactual values plus mean and
sd; :func:`list_metrics` describes every metric; :func:`summary_table` prints a short table.
"""

from cfx.evaluation.metrics import CHANGE_TOL, evaluate, list_metrics, summary_table

__all__ = ["CHANGE_TOL", "evaluate", "list_metrics", "summary_table"]

"""Evaluation of counterfactuals (SPEC §4): a registry of metrics and a per-(model, data)
context.

``cfx.evaluate(result, classifier, data=data)`` returns per-counterfactual values plus mean and
sd of every registered metric whose needs are met; :func:`list_metrics` describes them;
:func:`summary_table` prints a short table. Build an :class:`EvaluationContext` once with
:func:`context` to evaluate many results against the same (model, data).

One file per metric family, each registering its metrics on import:
:mod:`~cfx.evaluation.prediction` (validity, label validity, p(y⁺|x'), CARLA redundancy),
:mod:`~cfx.evaluation.distances` (L0, L1, L2, L∞, MAD-L1, CE.jl redundancy),
:mod:`~cfx.evaluation.plausibility` (implausibility, yNN),
:mod:`~cfx.evaluation.faithfulness` (unfaithfulness, set size),
:mod:`~cfx.evaluation.ssim` (image implausibility (1 − SSIM)/2),
:mod:`~cfx.evaluation.violations` (constraint violations),
:mod:`~cfx.evaluation.search_info` (convergence, steps, outcome, runtime);
population metrics, which ``cfx.evaluate`` does not compute:
:mod:`~cfx.evaluation.population` (counterfactual training's IP, IP*, cost, sensitivity;
accuracy, robust accuracy), :mod:`~cfx.evaluation.shift` (the recourse dynamics' MMD and PP-MMD,
disagreement, decisiveness, F1, parameter change), :mod:`~cfx.evaluation.rules` (rule-based
recourse: a rule's accuracy, feasibility, changes, complexity, consistency), with one kernel and
one MMD in :mod:`~cfx.evaluation.mmd`.
Adding a metric::

    cfx.evaluation.register(cfx.evaluation.Metric(
        "l1_sq", lambda cf, x, target, ctx: jnp.sum(jnp.abs(cf - x)) ** 2,
        description="squared L1 distance"))
"""

from cfx.evaluation.registry import (
    EVALUATED,
    LEVELS,
    NEEDS,
    Metric,
    get_metric,
    headline_metrics,
    list_metrics,
    register,
    register_family,
    unregister,
)
from cfx.evaluation.context import EvaluationContext, context

# families register their metrics on import; the order here is the reporting order
from cfx.evaluation import prediction, distances, plausibility, faithfulness, violations, search_info  # noqa: E402,F401,I001
from cfx.evaluation import ssim  # noqa: E402,F401,I001  (image implausibility, after the neighbour family)
from cfx.evaluation import population, shift  # noqa: E402,F401,I001  (CT's and the dynamics' metrics)
from cfx.evaluation import rules  # noqa: E402,F401,I001  (rule-based recourse, T-CREx)
from cfx.evaluation.conventions import CHANGE_TOL
from cfx.evaluation.core import Evaluation, evaluate
from cfx.evaluation.table import summary_table

__all__ = [
    "CHANGE_TOL",
    "EVALUATED",
    "Evaluation",
    "EvaluationContext",
    "LEVELS",
    "Metric",
    "NEEDS",
    "context",
    "evaluate",
    "get_metric",
    "headline_metrics",
    "list_metrics",
    "register",
    "register_family",
    "summary_table",
    "unregister",
]

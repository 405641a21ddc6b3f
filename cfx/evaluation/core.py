"""``evaluate``: run the registered metrics on a result and aggregate them (SPEC §4).

See :mod:`cfx.evaluation.conventions` for the variants reported where the literature differs.
"""

from __future__ import annotations

import math
import warnings
from typing import Iterable

import jax.numpy as jnp
import numpy as np

from cfx import _deprecated
from cfx._validate import as_float, float_dtype
from cfx.classifier import Classifier
from cfx.constraints import Constraints, ResolvedConstraints
from cfx.data.dataset import Dataset
from cfx.evaluation import batching, registry
from cfx.evaluation.context import EvaluationContext, context as build_context, same_classifier
from cfx.evaluation.registry import Metric, default_cost
from cfx.search import CounterfactualResult


def _check_result(result, classifier) -> None:
    if not isinstance(result, CounterfactualResult):
        raise TypeError(f"result must be a cfx.CounterfactualResult, got {type(result).__name__}")
    if not isinstance(classifier, Classifier):
        raise TypeError(f"classifier must be a cfx.Classifier, got {type(classifier).__name__}")
    cfs = result.counterfactuals
    if cfs.ndim != 3:
        raise ValueError(f"result.counterfactuals must have shape (n, K, d); got {tuple(cfs.shape)}")
    n, K, d = cfs.shape
    if n * K == 0:
        raise ValueError(f"result has no counterfactuals (shape {tuple(cfs.shape)})")
    if tuple(result.factuals.shape) != (n, d):
        raise ValueError(f"result.factuals has shape {tuple(result.factuals.shape)}; expected ({n}, {d})")
    if tuple(np.shape(result.target)) != (n,):
        raise ValueError(f"result.target has shape {tuple(np.shape(result.target))}; expected ({n},)")
    if classifier.n_features != d:
        raise ValueError(f"classifier takes {classifier.n_features} features but the result's counterfactuals have {d}")
    target = np.asarray(result.target)
    if target.min() < -1 or target.max() >= classifier.n_classes:
        raise ValueError(
            f"result.target must lie in [-1, {classifier.n_classes}) (-1: untargeted); "
            f"got values in [{target.min()}, {target.max()}]"
        )


def _check_neighbours(n_neighbors, ynn_neighbors) -> None:
    for name, k in (("n_neighbors", n_neighbors), ("ynn_neighbors", ynn_neighbors)):
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"{name} must be a positive int, got {k!r}")


def _context_for(classifier, data, constraints, ctx) -> EvaluationContext:
    if ctx is None:
        return build_context(classifier, data, constraints=constraints)
    if not isinstance(ctx, EvaluationContext):
        raise TypeError(f"context must be built by cfx.evaluation.context, got {type(ctx).__name__}")
    if data is not None or constraints is not None:
        raise ValueError("pass data and constraints to cfx.evaluation.context(...), not together with context=")
    if not same_classifier(ctx.classifier, classifier):
        raise ValueError(
            "context was built for another classifier (or other parameters): its predictions "
            "would be stale; build one with cfx.evaluation.context(classifier, data)"
        )
    return ctx


def _aggregate(values: np.ndarray) -> tuple[float, float]:
    """NaN-aware mean and sample sd (ddof=1; NaN with fewer than two defined values)."""
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return math.nan, math.nan
    if np.all(finite == finite[0]):  # exact, without the rounding noise of mean/std
        return float(finite[0]), (0.0 if finite.size > 1 else math.nan)
    mean = float(finite.mean())
    sd = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
    return mean, sd


def _families(metrics: Iterable[Metric]) -> dict[str, list[Metric]]:
    """Metrics grouped by the computation that produces them, in first-appearance order."""
    out: dict[str, list[Metric]] = {}
    for m in metrics:
        out.setdefault(m.key, []).append(m)
    return out


def _run_traced(members: list[Metric], ctx: EvaluationContext, units, x, target) -> dict[str, np.ndarray]:
    """One family over all units (counterfactuals (m, d) or sets (n, K, d)) -> {name: (rows,)}."""
    first = members[0]
    rows = int(units.shape[0])
    elements, model_rows = (first.cost or default_cost)(ctx, tuple(units.shape[1:]))
    out = batching.map_metrics(
        ctx.view(first.needs),
        units,
        x,
        target,
        fn=first.fn,
        names=tuple(m.name for m in members),
        batch_size=batching.chunk_size(rows, elements, model_rows),
    )
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


class Evaluation(dict):
    """What :func:`evaluate` returns: a dict with ``"per_counterfactual"`` ({name: (n, K) array}),
    ``"mean"`` and ``"sd"``. ``"per_factual"`` is the deprecated name of ``"per_counterfactual"``
    (removed in 0.3; it warns): the arrays hold one value per counterfactual, not per factual."""

    def _key(self, key):
        if key == "per_factual":
            warnings.warn(
                "evaluate(...)['per_factual'] is deprecated: use 'per_counterfactual' (its arrays are "
                "(n, K), one value per counterfactual)",
                DeprecationWarning,
                stacklevel=3,
            )
            return "per_counterfactual"
        return key

    def __getitem__(self, key):
        return super().__getitem__(self._key(key))

    def get(self, key, default=None):
        return super().get(self._key(key), default)


@_deprecated.keyword_only("data")
def evaluate(
    result: CounterfactualResult,
    classifier: Classifier,
    *,
    data: Dataset | None = None,
    constraints: Constraints | ResolvedConstraints | None = None,
    n_neighbors: int = 100,
    ynn_neighbors: int = 5,
    context: EvaluationContext | None = None,
    metrics: Iterable[str] | None = None,
) -> dict:
    """Evaluate every counterfactual of a search with the registered metrics (SPEC §4).

    Args:
      result: a :class:`CounterfactualResult` with n factuals and K counterfactuals each;
        target -1 marks an untargeted row (valid = the predicted label left the factual's).
      classifier: the model to judge validity by (may differ from the one searched with).
      data: reference data (usually the training split). Enables ``mad_l1`` (MAD of
        ``data.X``), ``implausibility`` (mean L2 distance to the ``n_neighbors`` nearest
        points of the target class by true label ``data.y``; all of them if the class has
        fewer) and ``ynn`` (share of the ``ynn_neighbors`` nearest points, any class, whose
        *predicted* label is the target; its mean is CARLA's yNN = 1 − share of
        disagreeing neighbours). Its schema supplies the constraints when ``constraints``
        is None.
      constraints: constraints to count violations against; default: ``data.schema`` when
        data is given, else none (all violation counts 0).
      n_neighbors: neighbours for implausibility (ECCCo: 100).
      ynn_neighbors: neighbours for yNN (CARLA: 5).
      context: a prebuilt :func:`cfx.evaluation.context` of (classifier, data) to reuse
        instead of ``data``/``constraints`` (which must then be None).
      metrics: names to compute (default: every registered one). Metrics whose needs the
        context does not meet are skipped.

    Returns:
      an :class:`Evaluation`, a dict ``{"per_counterfactual": {name: (n, K) float64 array}, "mean": {name: float},
      "sd": {name: float}}``. Means and sample sds are over all n·K counterfactuals (over
      the n sets for set-level metrics), ignoring NaN (e.g. ``redundancy_carla`` of
      label-invalid counterfactuals). Result-level scalars (``runtime_total_s``,
      ``compile_s``, ``threshold``) are in ``"mean"`` only. See :func:`list_metrics`.

    Example::

        m = cfx.evaluate(res, clf, data=train)
        m["mean"]["validity"], m["per_counterfactual"]["l1"].shape   # (n, K)
        print(cfx.evaluation.summary_table(m))
    """
    _check_result(result, classifier)
    _check_neighbours(n_neighbors, ynn_neighbors)
    selected = registry.select(metrics)
    n, K, d = result.counterfactuals.shape
    ctx = _context_for(classifier, data, constraints, context)
    N = ctx.n_data
    ctx = ctx.replace(
        threshold=as_float(float(result.threshold)),
        n_neighbors=min(n_neighbors, N) if N else None,
        ynn_neighbors=min(ynn_neighbors, N) if N else None,
    )

    cfs = jnp.asarray(result.counterfactuals, float_dtype())
    factuals = jnp.asarray(result.factuals, float_dtype())
    target = jnp.asarray(result.target, jnp.int32)
    flat = (cfs.reshape(n * K, d), jnp.repeat(factuals, K, axis=0), jnp.repeat(target, K))

    values: dict[str, tuple[str, object]] = {}  # name -> (kind, value)
    for members in _families(m for m in selected if ctx.has(m.needs)).values():
        level = members[0].level
        if level == "counterfactual":
            for k, v in _run_traced(members, ctx, *flat).items():
                values[k] = ("cf", v.reshape(n, K))
        elif level == "set":
            for k, v in _run_traced(members, ctx, cfs, factuals, target).items():
                values[k] = ("set", v)
        else:
            for m in members:
                out = m.fn(result, ctx)
                if isinstance(out, dict):
                    out = out.get(m.name)
                if out is None:
                    continue
                out = np.asarray(out, np.float64)
                if out.ndim == 0:
                    values[m.name] = ("scalar", float(out))
                elif out.shape == (n, K):
                    values[m.name] = ("cf", out)
                else:
                    raise ValueError(
                        f"result-level metric {m.name!r} returned shape {out.shape}; expected a scalar or ({n}, {K})"
                    )

    per_counterfactual, mean, sd = {}, {}, {}
    for m in selected:  # registry order
        if m.name not in values:
            continue
        kind, v = values[m.name]
        if kind == "scalar":
            mean[m.name] = v
            continue
        per_counterfactual[m.name] = v if kind == "cf" else np.repeat(v[:, None], K, axis=1)
        mean[m.name], sd[m.name] = _aggregate(v)
    # per-counterfactual entries first, then the once-per-result scalars
    mean = {
        **{k: mean[k] for k in per_counterfactual},
        **{k: v for k, v in mean.items() if k not in per_counterfactual},
    }
    return Evaluation(per_counterfactual=per_counterfactual, mean=mean, sd=sd)

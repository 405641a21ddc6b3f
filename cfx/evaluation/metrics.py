"""Per-counterfactual evaluation metrics (SPEC §4) and their aggregation.

:func:`evaluate` turns a :class:`~cfx.result.CounterfactualResult` into a table of metrics,
one value per counterfactual, plus mean and sd over all n·K counterfactuals. Everything
per counterfactual runs in two jitted functions, vmapped over counterfactuals and chunked
with ``lax.map(..., batch_size=B)`` so memory stays bounded (B is chosen from a fixed
element budget); the classifier is a jit argument, so re-evaluating under new parameters
(retraining, dynamics) does not recompile.

Conventions (where the literature differs, which variant cfx reports):

- "changed" means |x'_j - x_j| > 1e-5 (CARLA's L0 tolerance) everywhere: L0, both
  redundancies, immutable features.
- ``l2`` is the true Euclidean norm ‖x' - x‖₂. CARLA's "L2_distance" is the *squared*
  norm; square ``l2`` to compare with CARLA tables.
- ``validity`` is recomputed from the classifier (p(y⁺|x') ≥ τ, τ = ``result.threshold``),
  never read from ``result.target_probs``, so a result can be re-evaluated under a new model.
- Means are over *all* counterfactuals, valid or not (CARLA drops invalid ones before
  computing distances and yNN; filter with ``per_factual["label_validity"]`` to reproduce
  that). Metrics undefined for a counterfactual are NaN and means/sds ignore NaN.
"""

from __future__ import annotations

import functools
import math
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from cfx.classifier import Classifier
from cfx.constraints import DECREASE, INCREASE, Constraints, ResolvedConstraints
from cfx.data.dataset import Dataset
from cfx.result import CounterfactualResult

#: |Δ_j| above this counts as a change (CARLA's ``np.isclose(delta, 0, atol=1e-5)``).
CHANGE_TOL = 1e-5

#: Largest intermediate array (in elements) one chunk of a metric computation may build.
#: 2**24 float32 = 64 MiB: e.g. 800 query rows x 20,000 data rows per kNN chunk.
_CHUNK_ELEMENTS = 2**24
#: Most input rows the classifier sees in one chunk (bounds its hidden activations, which
#: the evaluation cannot see: 8192 rows x 1000 hidden units = 32 MiB per layer).
_MODEL_ROWS = 8192

_METRICS: dict[str, str] = {
    "validity": "p(target | x') >= threshold (tau = result.threshold), recomputed from the classifier",
    "label_validity": "argmax of the classifier's logits at x' equals the target",
    "target_prob": "p(target | x') under the classifier",
    "l0": "number of features with |x'_j - x_j| > 1e-5",
    "l1": "sum_j |x'_j - x_j|",
    "l2": "||x' - x||_2, the true Euclidean norm (CARLA's 'L2' is its square)",
    "linf": "max_j |x'_j - x_j|",
    "mad_l1": "sum_j |x'_j - x_j| / MAD_j, MAD from data.X (MAD 0 -> 1); needs data",
    "redundancy": "CE.jl: fraction of features left unchanged (|x'_j - x_j| < 1e-5)",
    "redundancy_carla": "CARLA: changed features whose lone reversion keeps the predicted label == target "
    "(NaN when x' is not label-valid)",
    "implausibility": "ECCCo: mean L2 distance from x' to its n_neighbors nearest target-class points "
    "(true labels) in data; needs data",
    "ynn": "CARLA yNN: share of the 5 nearest data points whose predicted label == target; "
    "its mean is yNN; needs data",
    "immutable_changed": "immutable features with |x'_j - x_j| > 1e-5",
    "out_of_bounds": "features outside [lower_j, upper_j]",
    "invalid_onehot": "categorical groups that are not a valid one-hot vector (a single column: not in {0, 1})",
    "monotone_violated": "increase-only features that decreased or decrease-only features that increased (> 1e-5)",
    "violations": "immutable_changed + out_of_bounds + invalid_onehot + monotone_violated",
    "converged": "the search's convergence rule held at the final point (from the result)",
    "steps": "optimisation steps taken before the counterfactual froze (from the result)",
    "runtime_s": "search wall-clock seconds per counterfactual: result.runtime_s / (n K)",
    "runtime_total_s": "search wall-clock seconds for the whole batch (mean only)",
    "compile_s": "seconds spent compiling the search (mean only)",
    "threshold": "the decision threshold tau the result was searched with (mean only)",
}

#: What :func:`summary_table` shows by default (those present).
_SUMMARY_KEYS = (
    "validity", "l1", "l2", "mad_l1", "redundancy", "redundancy_carla", "implausibility", "ynn",
    "violations", "converged", "steps", "runtime_s", "compile_s",
)

#: Entries that are reported once per result, in ``"mean"`` only.
_SCALAR_ONLY = ("runtime_total_s", "compile_s", "threshold")


def list_metrics() -> dict[str, str]:
    """All metric names that :func:`evaluate` can report, with a one-line description."""
    return dict(_METRICS)


# --------------------------------------------------------------------------------------
# Pure per-counterfactual metrics (one counterfactual; vmapped / lax.map-ped by callers)
# --------------------------------------------------------------------------------------


def _distances(cf: jax.Array, x: jax.Array) -> dict[str, jax.Array]:
    """L0 (|Δ_j| > 1e-5), L1, true L2, L∞ and CE.jl redundancy (share of |Δ_j| < 1e-5)."""
    delta = cf - x
    absd = jnp.abs(delta)
    changed = absd > CHANGE_TOL
    return {
        "l0": jnp.sum(changed),
        "l1": jnp.sum(absd),
        "l2": jnp.sqrt(jnp.sum(delta * delta)),
        "linf": jnp.max(absd),
        "redundancy": jnp.mean(~changed),
    }


def _prediction_metrics(clf: Classifier, threshold, cf: jax.Array, x: jax.Array, target) -> dict[str, jax.Array]:
    """Validity, label validity, p(target|x') and CARLA's redundancy.

    CARLA redundancy: for each changed feature j, set x'_j back to x_j alone and count the
    reversions after which argmax f still equals the target. CARLA evaluates only
    counterfactuals whose predicted label is the target (it sets the others to NaN and drops
    them), so it is NaN here for label-invalid counterfactuals. All d reversions go through
    the model as one (d, d) batch.
    """
    d = cf.shape[-1]
    logits = clf.raw_logits(cf[None])[0]
    probs = jax.nn.softmax(logits)
    p_t = probs[target]
    label_valid = jnp.argmax(logits) == target
    reverted = jnp.where(jnp.eye(d, dtype=bool), x[None, :], cf[None, :])  # row j: x'_j := x_j
    kept = jnp.argmax(clf.raw_logits(reverted), axis=-1) == target
    changed = jnp.abs(cf - x) > CHANGE_TOL
    n_redundant = jnp.sum(changed & kept).astype(jnp.float32)
    return {
        "validity": p_t >= threshold,
        "label_validity": label_valid,
        "target_prob": p_t,
        "redundancy_carla": jnp.where(label_valid, n_redundant, jnp.nan),
    }


def _violations(rc: ResolvedConstraints, cf: jax.Array, x: jax.Array) -> dict[str, jax.Array]:
    """Counts of broken constraints (all 0 for a feasible counterfactual).

    A one-hot group is valid when every column is within 1e-5 of 0 or 1 and exactly one is
    1; a single-column group when its value is within 1e-5 of 0 or 1. Bounds are compared
    exactly (the search clamps exactly).
    """
    delta = cf - x
    immutable = jnp.sum(rc.immutable & (jnp.abs(delta) > CHANGE_TOL))
    oob = jnp.sum((cf < rc.lower) | (cf > rc.upper))
    monotone = jnp.sum(
        ((rc.mutability == INCREASE) & (delta < -CHANGE_TOL)) | ((rc.mutability == DECREASE) & (delta > CHANGE_TOL))
    )
    onehot = jnp.zeros((), jnp.int32)
    for group in rc.categorical_groups:  # static, over feature groups (not examples)
        cols = cf[jnp.asarray(group)]
        binary = jnp.all((jnp.abs(cols) <= CHANGE_TOL) | (jnp.abs(cols - 1.0) <= CHANGE_TOL))
        ok = binary if len(group) == 1 else binary & (jnp.abs(jnp.sum(cols) - 1.0) <= CHANGE_TOL)
        onehot = onehot + (~ok).astype(jnp.int32)
    return {
        "immutable_changed": immutable,
        "out_of_bounds": oob,
        "invalid_onehot": onehot,
        "monotone_violated": monotone,
        "violations": immutable + oob + onehot + monotone,
    }


def _mad_l1(cf: jax.Array, x: jax.Array, mad: jax.Array) -> jax.Array:
    """Wachter et al.'s MAD-weighted L1: Σ_j |x'_j − x_j| / MAD_j."""
    return jnp.sum(jnp.abs(cf - x) / mad)


def _as_float(metrics: dict[str, jax.Array]) -> dict[str, jax.Array]:
    return {k: v.astype(jnp.float32) for k, v in metrics.items()}


# --------------------------------------------------------------------------------------
# Batched, jitted drivers
# --------------------------------------------------------------------------------------


def _chunk_size(n_rows: int, elements_per_row: int, model_rows_per_row: int = 0) -> int:
    """Rows per chunk so that one chunk builds at most ``_CHUNK_ELEMENTS`` elements and
    sends at most ``_MODEL_ROWS`` inputs through the classifier."""
    size = _CHUNK_ELEMENTS // max(1, elements_per_row)
    if model_rows_per_row:
        size = min(size, _MODEL_ROWS // model_rows_per_row)
    return int(max(1, min(n_rows, size)))


@functools.partial(jax.jit, static_argnames=("batch_size",))
def _cf_metrics(clf, threshold, rc, mad, cf, x, target, *, batch_size: int):
    """Model-, distance- and constraint-based metrics for (m, d) counterfactuals -> dict of (m,)."""

    def one(args):
        cf_i, x_i, t_i = args
        out = _distances(cf_i, x_i)
        out.update(_prediction_metrics(clf, threshold, cf_i, x_i, t_i))
        out.update(_violations(rc, cf_i, x_i))
        if mad is not None:
            out["mad_l1"] = _mad_l1(cf_i, x_i, mad)
        return _as_float(out)

    return jax.lax.map(one, (cf, x, target), batch_size=batch_size)


@functools.partial(jax.jit, static_argnames=("batch_size",))
def _predict_labels(clf, X, *, batch_size: int):
    """argmax f(x) for every data row, in chunks."""
    return jax.lax.map(lambda row: jnp.argmax(clf.raw_logits(row[None])[0]), X, batch_size=batch_size)


@functools.partial(jax.jit, static_argnames=("k_imp", "k_ynn", "batch_size"))
def _neighbour_metrics(X, y, pred, cf, target, *, k_imp: int, k_ynn: int, batch_size: int):
    """Implausibility and yNN share for (m, d) counterfactuals against data (N, d).

    Nearest neighbours come from squared distances ‖q‖² + ‖x_i‖² − 2 q·x_i (a matmul per
    chunk) and ``lax.top_k``; the reported implausibility then uses the exact ‖q − x_i‖ of the
    selected points. Non-target points are masked with +inf, so when the target class has
    fewer than ``k_imp`` points all of them are used; with none, the result is NaN.
    """
    sq_norms = jnp.sum(X * X, axis=-1)

    def one(args):
        q, t = args
        d2 = jnp.maximum(sq_norms + jnp.dot(q, q) - 2.0 * (X @ q), 0.0)
        # implausibility: k nearest points of the target class (true labels)
        neg_d2, idx = jax.lax.top_k(jnp.where(y == t, -d2, -jnp.inf), k_imp)
        found = neg_d2 > -jnp.inf
        dist = jnp.linalg.norm(X[idx] - q, axis=-1)
        n_found = jnp.sum(found)
        implaus = jnp.where(n_found > 0, jnp.sum(jnp.where(found, dist, 0.0)) / jnp.maximum(n_found, 1), jnp.nan)
        # yNN: k nearest points of any class, labelled by the model
        _, idx_nn = jax.lax.top_k(-d2, k_ynn)
        share = jnp.mean(pred[idx_nn] == t)
        return {"implausibility": implaus.astype(jnp.float32), "ynn": share.astype(jnp.float32)}

    return jax.lax.map(one, (cf, target), batch_size=batch_size)


# --------------------------------------------------------------------------------------
# Input checks and host-side helpers
# --------------------------------------------------------------------------------------


def _check_inputs(result, classifier, data, n_neighbors, ynn_neighbors) -> None:
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
    if target.min() < 0 or target.max() >= classifier.n_classes:
        raise ValueError(f"result.target must lie in [0, {classifier.n_classes}); got values in [{target.min()}, {target.max()}]")
    if data is not None:
        if not isinstance(data, Dataset):
            raise TypeError(f"data must be a cfx.data.Dataset or None, got {type(data).__name__}")
        if data.n_features != d:
            raise ValueError(f"data has {data.n_features} features but the result's counterfactuals have {d}")
        if len(data) == 0:
            raise ValueError("data is empty: implausibility, yNN and MAD need at least one row")
    for name, k in (("n_neighbors", n_neighbors), ("ynn_neighbors", ynn_neighbors)):
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"{name} must be a positive int, got {k!r}")


def _resolve_constraints(constraints, data, d: int) -> ResolvedConstraints:
    """``constraints`` if given, else the data's schema, else unconstrained."""
    if constraints is None:
        constraints = data.schema.constraints() if data is not None else Constraints()
    if isinstance(constraints, Constraints):
        return constraints.resolve(d)
    if isinstance(constraints, ResolvedConstraints):
        if tuple(constraints.mutability.shape) != (d,):
            raise ValueError(f"constraints resolved for {constraints.mutability.shape[0]} features; expected {d}")
        return constraints
    raise TypeError(f"constraints must be a cfx.Constraints, ResolvedConstraints or None, got {type(constraints).__name__}")


def _mad(X: np.ndarray) -> np.ndarray:
    """Per-feature median absolute deviation median_i |X_ij − median_i X_ij| (unscaled, as in
    Wachter et al. and CE.jl); a zero MAD (constant feature, MAD <= 1e-8) becomes 1 so the
    weight is finite, as in ``Wachter.from_data`` (CE.jl instead adds n·1e-5 to every MAD)."""
    X = np.asarray(X, np.float64)
    mad = np.median(np.abs(X - np.median(X, axis=0)), axis=0)
    return np.where(mad > 1e-8, mad, 1.0).astype(np.float32)  # same guard as Wachter.from_data


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


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def evaluate(
    result: CounterfactualResult,
    classifier: Classifier,
    data: Dataset | None = None,
    *,
    constraints: Constraints | ResolvedConstraints | None = None,
    n_neighbors: int = 100,
    ynn_neighbors: int = 5,
) -> dict:
    """Evaluate every counterfactual of a search (SPEC §4).

    Args:
      result: a :class:`CounterfactualResult` with n factuals and K counterfactuals each.
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

    Returns:
      ``{"per_factual": {name: (n, K) float64 array}, "mean": {name: float},
      "sd": {name: float}}``. Means and sample sds are over all n·K counterfactuals,
      ignoring NaN (e.g. ``redundancy_carla`` of label-invalid counterfactuals). ``"mean"``
      also holds ``runtime_total_s``, ``compile_s`` and ``threshold``. See
      :func:`list_metrics` for every name and its definition.

    Example::

        m = cfx.evaluate(res, clf, data=train)
        m["mean"]["validity"], m["per_factual"]["l1"].shape   # (n, K)
        print(cfx.evaluation.summary_table(m))
    """
    _check_inputs(result, classifier, data, n_neighbors, ynn_neighbors)
    n, K, d = result.counterfactuals.shape
    m = n * K
    cf = jnp.asarray(result.counterfactuals, jnp.float32).reshape(m, d)
    x = jnp.repeat(jnp.asarray(result.factuals, jnp.float32), K, axis=0)
    target = jnp.repeat(jnp.asarray(result.target, jnp.int32), K)
    rc = _resolve_constraints(constraints, data, d)
    threshold = jnp.float32(result.threshold)
    mad = None if data is None else jnp.asarray(_mad(data.X))

    # a counterfactual's model batch is its d reversions plus itself: (d + 1) x d inputs
    per = _cf_metrics(classifier, threshold, rc, mad, cf, x, target, batch_size=_chunk_size(m, (d + 1) * d, d + 1))
    per = dict(per)
    if data is not None:
        X = jnp.asarray(data.X, jnp.float32)
        N = X.shape[0]
        pred = _predict_labels(classifier, X, batch_size=_chunk_size(N, d, 1))
        k_imp, k_ynn = min(n_neighbors, N), min(ynn_neighbors, N)
        per.update(
            _neighbour_metrics(
                X,
                jnp.asarray(data.y, jnp.int32),
                pred,
                cf,
                target,
                k_imp=k_imp,
                k_ynn=k_ynn,
                # per query: a row of N distances and the k_imp gathered neighbours (k_imp x d)
                batch_size=_chunk_size(m, max(N, (k_imp + k_ynn) * d)),
            )
        )

    per_factual = {name: np.asarray(v, np.float64).reshape(n, K) for name, v in per.items()}
    per_factual["converged"] = np.asarray(result.converged, np.float64).reshape(n, K)
    per_factual["steps"] = np.asarray(result.steps, np.float64).reshape(n, K)
    per_factual["runtime_s"] = np.full((n, K), float(result.runtime_s) / m)
    order = [k for k in _METRICS if k in per_factual]
    per_factual = {k: per_factual[k] for k in order}

    mean, sd = {}, {}
    for name, values in per_factual.items():
        mean[name], sd[name] = _aggregate(values)
    mean["runtime_total_s"] = float(result.runtime_s)
    mean["compile_s"] = float(result.compile_s)
    mean["threshold"] = float(result.threshold)
    return {"per_factual": per_factual, "mean": mean, "sd": sd}


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan"
    return f"{v:.4g}"


def summary_table(metrics: Mapping, keys=None) -> str:
    """A short aligned text table of ``mean ± sd`` per metric.

    Args:
      metrics: the dict returned by :func:`evaluate`, or a mapping ``label -> that dict``
        (one column per label, e.g. one per generator).
      keys: metric names to show; default: the headline ones (validity, costs,
        redundancy, plausibility, violations, convergence, runtime) that are present;
        ``"all"``: every metric present. Mean-only entries are shown without ± sd.

    Example::

        >>> print(summary_table(cfx.evaluate(res, clf, data=train)))   # doctest: +SKIP
        metric          value
        validity        0.98 ± 0.1414
        l1              1.234 ± 0.5021
        ...
    """
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be the dict returned by cfx.evaluate (or label -> such dicts), got {type(metrics).__name__}")
    columns = {"value": metrics} if "mean" in metrics else dict(metrics)
    for label, col in columns.items():
        if not isinstance(col, Mapping) or "mean" not in col:
            raise ValueError(f"metrics[{label!r}] is not an evaluate() result (no 'mean' entry)")
    present = set().union(*(col["mean"].keys() for col in columns.values()))
    if keys is None:
        keys = [k for k in _SUMMARY_KEYS if k in present]
    elif keys == "all":
        keys = [k for k in _METRICS if k in present] + sorted(present - set(_METRICS))
    rows = [["metric", *map(str, columns)]]
    for key in keys:
        row = [key]
        for col in columns.values():
            mean = col["mean"].get(key)
            if mean is None:
                row.append("-")
                continue
            sd = col.get("sd", {}).get(key)
            cell = _fmt(mean)
            if key not in _SCALAR_ONLY and sd is not None and not math.isnan(sd):
                cell += f" ± {_fmt(sd)}"
            row.append(cell)
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)

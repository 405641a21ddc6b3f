"""Global counterfactual rules (T-CREx, Bewley et al. 2024) as tables in the data's raw units.

``cfx.explain_global(classifier, train, target=1)`` fits :class:`cfx.generators.TCREx` (the
rules and metarules of :mod:`cfx.generators.tcrex`) and returns one row per maximal-valid
rule: its conditions in raw units, accuracy τ(R) (share of the data inside R the model labels
``target``), feasibility ρ(R) (share of the data inside R), and with ``factuals`` the share of
them the metarules send to R, the features they change and whether the model accepts the
counterfactual point (validity). :func:`metarules_frame` gives the metarules ("if x is in
this region, R is its cheapest rule").
"""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd

from cfx.generators.tcrex import TCREx, _tree_leaves

__all__ = ["explain_global", "rules_frame", "metarules_frame", "raw_bounds"]


def raw_bounds(data, lower, upper) -> tuple[np.ndarray, np.ndarray]:
    """Box bounds (…, d) in the data's raw units: raw = offset + scale·x (the schema's
    ``raw_offset``/``raw_scale`` set by standardisation; else the standardizer's; else x)."""
    schema = getattr(data, "schema", None)
    offset = getattr(schema, "raw_offset", None)
    scale = getattr(schema, "raw_scale", None)
    std = getattr(data, "standardizer", None)
    if offset is None and std is not None:
        offset, scale = std.mean, std.scale
    if offset is None:
        return np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    offset, scale = np.asarray(offset, np.float64), np.asarray(scale, np.float64)
    return offset + scale * np.asarray(lower, np.float64), offset + scale * np.asarray(upper, np.float64)


def _names(data, d: int) -> list[str]:
    schema = getattr(data, "schema", None)
    return list(schema.names) if schema is not None else [f"x{j}" for j in range(d)]


def _kinds(data, d: int) -> list[str]:
    kinds = getattr(getattr(data, "schema", None), "kinds", None)
    return list(kinds) if kinds is not None else ["continuous"] * d


def _condition(name: str, kind: str, lo: float, hi: float) -> str | None:
    """One feature's condition lo < x <= hi as text (None when unbounded); 0/1 columns as = 1 / = 0."""
    if not (np.isfinite(lo) or np.isfinite(hi)):
        return None
    if kind in ("categorical", "binary"):
        if np.isfinite(lo) and 0.0 <= lo < 1.0:
            return f"{name} = 1"
        if np.isfinite(hi) and 0.0 <= hi < 1.0:
            return f"{name} = 0"
    if np.isfinite(lo) and np.isfinite(hi):
        return f"{lo:.4g} < {name} <= {hi:.4g}"
    return f"{name} > {lo:.4g}" if np.isfinite(lo) else f"{name} <= {hi:.4g}"


def _conditions(data, lower, upper) -> list[str]:
    lo, hi = raw_bounds(data, lower, upper)
    d = lo.shape[-1]
    names, kinds = _names(data, d), _kinds(data, d)
    out = []
    for row_lo, row_hi in zip(lo.reshape(-1, d), hi.reshape(-1, d)):
        parts = [c for j in range(d) if (c := _condition(names[j], kinds[j], row_lo[j], row_hi[j])) is not None]
        out.append(" and ".join(parts) if parts else "(everywhere)")
    return out


def _check(gen: TCREx, target: int) -> int:
    if not isinstance(gen, TCREx) or gen.rule_lower is None:
        raise TypeError("expected a fitted cfx.generators.TCREx (TCREx().fit(classifier, train, key=key))")
    n_classes = int(np.shape(gen.rule_lower)[0])
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < n_classes:
        raise ValueError(f"target must be a class index in 0..{n_classes - 1}; got {target!r}")
    return int(target)


def rules_frame(
    gen: TCREx,
    data,
    target: int = 1,
    *,
    classifier=None,
    factuals=None,
    counterfactuals=None,
    constraints=None,
    key: jax.Array | None = None,
) -> pd.DataFrame:
    """The maximal-valid rules of a fitted :class:`TCREx` for ``target``, one row each (module
    docstring); ``lower:<name>`` / ``upper:<name>`` columns hold the raw bounds (±inf: none).
    With ``factuals`` (n, d) and ``classifier``: ``assigned`` (share of factuals whose explanation
    is this rule), ``changes`` (mean features changed), ``validity`` (share of their
    counterfactual points the model labels ``target``) and ``cost_l1`` (mean L1, model units).
    ``counterfactuals`` (n, d): the points of a search already made with ``gen`` (else one is
    run, with ``constraints``)."""
    target = _check(gen, target)
    valid = np.asarray(gen.rule_valid[target])
    lower, upper = np.asarray(gen.rule_lower[target])[valid], np.asarray(gen.rule_upper[target])[valid]
    d = lower.shape[1]
    frame = pd.DataFrame(
        {
            "rule": np.arange(len(lower)),
            "conditions": _conditions(data, lower, upper),
            "accuracy": np.asarray(gen.rule_accuracy[target])[valid],
            "feasibility": np.asarray(gen.rule_feasibility[target])[valid],
            "n_conditions": (np.isfinite(lower) | np.isfinite(upper)).sum(1),
        }
    )
    if factuals is not None:
        if classifier is None:
            raise ValueError("factuals= needs classifier= (the model that labels the counterfactual points)")
        frame = frame.join(
            _assignment(gen, classifier, factuals, target, len(lower), key, counterfactuals, constraints), on="rule"
        )
    lo_raw, hi_raw = raw_bounds(data, lower, upper)
    for j, name in enumerate(_names(data, d)):
        frame[f"lower:{name}"], frame[f"upper:{name}"] = lo_raw[:, j], hi_raw[:, j]
    return frame


def _assignment(gen, classifier, factuals, target, m, key, counterfactuals=None, constraints=None) -> pd.DataFrame:
    from cfx.constraints import Constraints
    from cfx.search import generate

    x = np.asarray(factuals, np.float32).reshape(-1, classifier.n_features)
    if counterfactuals is None:
        res = generate(
            gen,
            classifier,
            x,
            target,
            key=jax.random.key(0) if key is None else key,
            max_steps=1,
            constraints=constraints,
        )
        counterfactuals = res.counterfactuals[:, 0]
    cf = np.asarray(counterfactuals, np.float32).reshape(x.shape)
    mutability = (constraints or Constraints()).resolve(x.shape[1]).mutability
    rules, allowed = gen.choose(x, np.full(len(x), target), mutability, 1)
    rule = np.where(np.asarray(allowed[:, 0]), np.asarray(rules[:, 0]), -1)
    valid = np.asarray(classifier.predict(cf)) == target
    changes = (np.abs(cf - x) > 1e-6).sum(1)
    cost = np.abs(cf - x).sum(1)
    rows = []
    for r in range(m):
        sel = rule == r
        rows.append(
            {
                "assigned": sel.mean(),
                "changes": changes[sel].mean() if sel.any() else np.nan,
                "validity": valid[sel].mean() if sel.any() else np.nan,
                "cost_l1": cost[sel].mean() if sel.any() else np.nan,
            }
        )
    return pd.DataFrame(rows)


def metarules_frame(gen: TCREx, data, target: int = 1) -> pd.DataFrame:
    """The metarules for ``target``: each leaf of the metarule tree as a region (raw units) and
    the rule that is optimal there (-1: none is allowed)."""
    target = _check(gen, target)
    tree = {k: np.asarray(v[target]) for k, v in gen.meta.items()}
    lower, upper, rule = _tree_leaves(tree, np.shape(gen.rule_lower)[-1])
    return pd.DataFrame({"metarule": np.arange(len(rule)), "region": _conditions(data, lower, upper), "rule": rule})


def explain_global(
    classifier,
    data,
    target: int = 1,
    *,
    factuals=None,
    key: jax.Array | None = None,
    return_generator: bool = False,
    **options,
):
    """T-CREx's global explanation of ``classifier`` on ``data`` (a Dataset, usually the training
    split) for class ``target``: a DataFrame with one row per maximal-valid rule in raw units
    (:func:`rules_frame`). ``options`` are :class:`cfx.generators.TCREx` fields (``rho`` ρ,
    ``tau`` τ, ``assign``, ``forest``, ...). ``return_generator=True`` returns ``(frame, gen)``:
    the fitted generator gives :func:`metarules_frame` and, through
    ``cfx.generate(gen, classifier, x, target, key=key)``, local explanations.

    Example::

        rules = cfx.explain_global(clf, train, target=1, rho=0.02, tau=0.9, factuals=test.X[:200])
        rules[["conditions", "accuracy", "feasibility", "assigned", "validity"]]
    """
    key = jax.random.key(0) if key is None else key
    gen = TCREx(**options).fit(classifier, data, key=key)
    frame = rules_frame(gen, data, target, classifier=classifier, factuals=factuals, key=key)
    return (frame, gen) if return_generator else frame

"""``cfx.explain``: counterfactuals for the rows of a DataFrame, returned as a DataFrame of raw values.

The five-line path::

    import cfx
    train, test = cfx.data.train_test(cfx.data.load("adult"))
    clf = cfx.models.fit(train)
    rows = test.to_frame().head(5)                      # raw values, indexed by row id
    cfx.explain(clf, rows, data=train, target=1, num_counterfactuals=3, generator="dice")

What it does: encode the rows with the data set's fitted encoder (errors name the column and
the row), run one compiled search for the whole batch (:func:`cfx.generate`, the data set's
constraints: mutability, bounds, one-hot groups, integer grids, tightened by the call's
``features_to_vary``/``permitted_range``/... (:mod:`cfx.data.rows`)), then one compiled
sparsity pass (revert every change that the counterfactual does not need, see :func:`sparsify`),
decode into the rows' own values and dtypes, and score the returned raw rows re-encoded. DiCE
(K > 1) runs four searches per row from spread starts and keeps the K valid members farthest
apart (``runs``, :func:`spread_starts`, :func:`most_diverse`; docs/tabular.md, issue 23).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from cfx._spread import SPREAD_SHARE, most_diverse, spread_starts
from cfx._validate import as_float, float_dtype
from cfx.search import _checks as checks
from cfx import _deprecated, generators as G
from cfx.classifier import Classifier
from cfx.data.dataset import Dataset
from cfx.generators.dice import DiCE, dice_ml_feature_weights
from cfx.data.rows import as_frame, call_constraints, raw_counterfactuals
from cfx.search import OUTCOMES
from cfx.restarts import bank, reachable, restart
from cfx.search import generate
from cfx._sparsity import CONTINUOUS_TOLERANCE, _choose, _validity, sparsify

#: explain's own defaults per generator, on top of the registry's (the benchmark keeps those).
#: DiCE at diversity 0.1 stopping at the first valid step returns near-copies of one
#: counterfactual; diversity 1.0 for at least 500 steps spreads the K (docs/tabular.md).
EXPLAIN_DEFAULTS: dict[str, dict[str, Any]] = {"dice": {"diversity": 1.0, "min_steps": 500, "stop": "set"}}
#: ``generator="dice"`` (or ``"dice-ml"``): DiCE as dice-ml's own gradient DiCE runs it (its PyTorch DiverseCF
#: defaults; Mothilal et al. 2020):
#: (1/K) Σ_k hinge(f(x'_k)) + (0.5/d') (1/K) Σ_k ||x'_k − x||_w − 1.0 · det(1/(1 + ||x'_i − x'_j||_w)),
#: ||·||_w dice-ml's inverse-MAD weighted L1 and d' its encoded width
#: (:func:`cfx.generators.dice.dice_ml_feature_weights`, from the dataset), at least 500 Adam
#: steps (learning rate 0.05) in dice-ml's search space, every feature min-max scaled to [0, 1]
#: by the data's bounds, the K stopping together (docs/tabular.md). ``"dice-cejl"`` keeps CE.jl's
#: loss (cross-entropy, 0.1 · L1 summed over K, unweighted L2 kernel) with EXPLAIN_DEFAULTS, as
#: ``cfx.generate(DiCE(), ...)`` and the benchmark run it.
DICE_ML_DEFAULTS: dict[str, Any] = {"yloss": "hinge", "k_terms": "mean", "diversity_distance": "l1"}
DICE_PROXIMITY = 0.5  # dice-ml's proximity_weight; explain's DiCE cost is DICE_PROXIMITY / d
MAX_STEPS = 1000
#: The search runs to p(target) >= this (or τ if higher), so the counterfactual has room; the
#: sparsity pass then reverts every change not needed for p >= τ. A search that stops at the first
#: point past τ leaves nothing to revert (every feature is needed to stay just past the boundary).
SEARCH_THRESHOLD = 0.75
#: explain's DiCE runs DICE_RUNS searches per row, each from spread starts (start="spread"), and
#: returns the K valid members of all runs farthest apart (issue 23; docs/tabular.md).
DICE_RUNS = 4
SPREAD_FROM_DATA = True  # spread starts take a random training row's values (not the box's)
SEARCH_OPTIONS = ("max_steps", "threshold", "start", "convergence", "min_steps", "batch_size", "loop")


def explain(
    classifier: Classifier,
    rows: pd.DataFrame | pd.Series | Mapping,
    *,
    data: Dataset | None = None,
    generator: str | G.Generator = "generic",
    target: int | None = None,
    num_counterfactuals: int = 1,
    sparse: bool = True,
    search_threshold: float | None = SEARCH_THRESHOLD,
    restarts: bool = True,
    seed: int = 0,
    features_to_vary: Sequence[str] | str | None = None,
    permitted_range: Mapping[str, object] | None = None,
    immutable: Sequence[str] | None = None,
    increase_only: Sequence[str] | None = None,
    decrease_only: Sequence[str] | None = None,
    runs: int | None = None,
    **options,
) -> pd.DataFrame:
    """Counterfactuals for every row of ``rows``, one output row per counterfactual.

    Args:
      classifier: a :class:`cfx.Classifier` trained on ``data``'s encoding (``cfx.models.fit``).
      rows: raw rows (the columns of ``data.to_frame()``; the label column may be present), a
        DataFrame, or one row as a Series (its name is the id) or a dict (id 0). A NaN, an unseen
        level, a string in a numeric column, a missing or extra column: a ValueError naming the
        column (and the row), before anything compiles.
      data: the training Dataset: its encoder encodes and decodes, its schema constrains,
        and generators that need data (Wachter's MAD, REVISE's VAE, ...) are fitted on it.
      generator: a registry name (``cfx.generators.describe()``; ``"dice"`` (alias ``"dice-ml"``) is
        DiCE with dice-ml's own loss, feature weights and search space, :data:`DICE_ML_DEFAULTS`;
        ``"dice-cejl"`` is DiCE with CE.jl's loss, as the registry's DiCE), or a Generator.
      target: the desired class (an int, or one per row); None: the other class of a binary
        model, any class but the row's prediction for more classes.
      num_counterfactuals: K per row (DiCE: K >= 2).
      sparse: after the search, revert each changed feature whose reversion keeps the
        counterfactual valid (:func:`sparsify`).
      search_threshold: the search runs until p(target) >= max(search_threshold, τ) (None: τ),
        leaving the sparsity pass room to revert changes; validity is always judged at τ. An
        exact generator (``exact = True``: FeatureTweak, the cheapest valid point) searches at τ.
        (Not ``threshold``: that is τ itself, as in :func:`cfx.generate`.)
      restarts: a counterfactual the search leaves invalid (a projected gradient that stalls on
        a face of the constraints' box) is replaced by the nearest valid point on the segment
        from the factual to its nearest training row that stays valid under the factual's
        constraints (:mod:`cfx.restarts`); ``status`` says ``restarted``.
      seed: PRNG seed of the search (noisy starts) and of the restarts' bank of training rows.
      features_to_vary, permitted_range, immutable, increase_only, decrease_only: per-call
        constraints by column name (DiCE's vocabulary), on top of the data set's own (a column's
        allowed directions are the intersection): ``features_to_vary`` (list or ``"all"``; the
        others are frozen), ``permitted_range={col: (lo, hi)}`` in raw units (ordinal: levels;
        categorical/binary: a list of allowed levels) inside the data's bounds and containing
        each row's value, and lists of immutable / increase-only / decrease-only columns.
      runs: independent searches per row, each from its own start; the K returned are the
        valid members of all runs·K that :func:`most_diverse` picks (most valid, then most pairs
        with different changed features, then the largest Σ pairwise L1), each judged after its
        own sparsity pass and rounding (K = 1: the nearest valid one). None: DICE_RUNS (4) for
        DiCE named by string (``"dice"``, ``"dice-ml"``, ``"dice-cejl"``) with K > 1, else 1. With
        more than one run a named generator starts from ``start="spread"``.
      **options: search options (``max_steps`` (default 1000), ``threshold`` τ, the start rule
        ``start`` (also ``"spread"``: :func:`spread_starts`, random features redrawn in their box),
        ``convergence``, ``min_steps``, ``batch_size``, ``loop``) or hyperparameters of the
        generator (e.g. ``cost=0.5``, ``diversity=2.0``). Deprecated (cfx 0.3 removes them):
        ``dataset=`` for ``data=`` and ``model=`` for ``classifier=``, the names of
        :func:`cfx.generate` and :func:`cfx.evaluate`.

    Returns:
      A DataFrame indexed by (``id``: the row's index in ``rows``, ``cf``: 0..K-1) with the raw
      feature columns as the rows hold them (unchanged cells copied exactly, each column in the
      rows' dtype, changed continuous values rounded to the column's precision), then ``valid``
      (p(target) >= τ when the returned raw row is re-encoded and re-scored), ``p_target``,
      ``cost`` (L1 distance in the model's standardised units), ``n_changed``, ``changed``
      (the names of the changed features), ``diversity`` (mean pairwise L1 among the K
      counterfactuals of the row; NaN for K = 1), ``duplicate`` (the same raw values as an
      earlier counterfactual of the row), ``outcome`` (the search's outcome code name) and
      ``already_target`` (the row itself is already predicted as the target; a warning counts them),
      ``status`` (``found``: valid from the search; ``restarted``: valid from a restart;
      ``not_found``: not valid) and ``reason`` (why, for ``not_found``; empty otherwise).
      A factual with no valid counterfactual gets a warning that counts them.
      ``frame.attrs`` holds ``factuals`` (the rows' feature columns as given), ``runtime_s`` and ``compile_s``.
    """
    classifier, data = _renamed(classifier, data, options)
    if search_threshold is not None and not (isinstance(search_threshold, (int, float)) and 0 < search_threshold <= 1):
        raise ValueError(f"search_threshold must be a probability in (0, 1] or None; got {search_threshold!r}")
    rows = as_frame(rows)
    clf, encoder, X = _inputs(classifier, rows, data)
    checks.check_target(target, len(X), clf.n_classes)  # before a generator is fitted or anything traced
    constraints = call_constraints(
        data,
        rows,
        features_to_vary=features_to_vary,
        permitted_range=permitted_range,
        immutable=immutable,
        increase_only=increase_only,
        decrease_only=decrease_only,
    )
    search_opts = {k: options.pop(k) for k in list(options) if k in SEARCH_OPTIONS or k == "init"}
    if "init" in search_opts:  # the start rule's name before cfx 0.2
        _deprecated.warn("explain(..., init=...)", "write start= (the start rule)")
        search_opts["start"] = search_opts.pop("init")
    gen = _generator(generator, options, data, clf)
    search_opts.setdefault("max_steps", MAX_STEPS)
    tau = search_opts.pop("threshold", None)
    tau = float(gen.threshold if tau is None else tau)
    if getattr(gen, "exact", False):  # its answer is already the cheapest valid point: no room to leave
        search_threshold = None
    K, R = num_counterfactuals, _runs(gen, num_counterfactuals, runs, isinstance(generator, str))
    if R > 1:  # R searches per row: the rows repeated, each copy from its own start
        X_search = np.repeat(X, R, 0)
        target = target if target is None or np.ndim(target) == 0 else np.repeat(np.asarray(target), R)
        search_opts.setdefault("start", "spread" if isinstance(generator, str) else gen.start)
        if not isinstance(search_opts["start"], str):  # starts of the call's own: every run starts there
            search_opts["start"] = np.repeat(np.asarray(search_opts["start"]), R, 0)
    else:
        X_search = X
    if isinstance(search_opts.get("start"), str) and search_opts["start"] == "spread":
        sample = data.X if SPREAD_FROM_DATA else None
        search_opts["start"] = spread_starts(X_search, K, constraints, encoder.units(), seed, SPREAD_SHARE, R, sample)
    start = search_opts.pop("start", None)
    fields = {k: search_opts.pop(k) for k in ("convergence", "min_steps") if k in search_opts}
    if isinstance(start, str):  # a start rule: the generator's field (an array: starts of the call's own)
        fields["start"], start = start, None
    searched = gen.replace(num_counterfactuals=K, threshold=max(tau, search_threshold or 0.0), **fields)
    res = generate(
        searched, clf, X_search, target, key=jax.random.key(seed), constraints=constraints, start=start, **search_opts
    )
    threshold = as_float(tau)
    units = encoder.units()
    factuals, goal = res.factuals[::R], res.target[::R]
    x_cf, outcome = res.counterfactuals, np.asarray(res.outcome)
    if R > 1:  # the K valid members farthest apart, each judged after its own sparsity pass
        n = len(X)
        x_cf, outcome = _choose(
            clf,
            encoder,
            rows,
            factuals,
            np.asarray(x_cf).reshape(n, R * K, -1),
            outcome.reshape(n, R * K),
            goal,
            threshold,
            K,
            sparse,
        )
    n = x_cf.shape[0]
    restarted, no_point, nowhere = np.zeros((n, K), bool), np.zeros((n, K), bool), np.zeros((n, K), bool)
    if restarts and not getattr(gen, "exact", False):  # an exact generator's miss is a proof: nothing to restart
        invalid = ~np.asarray(_validity(clf, factuals, x_cf, goal, threshold)[1])
        if invalid.any():
            points = bank(clf, data.X, seed=seed)
            x_cf, restarted = restart(
                clf, factuals, x_cf, goal, invalid, points, constraints, tau=tau, search_threshold=search_threshold
            )
            no_point = invalid & ~restarted
            if no_point.any():
                nowhere = no_point & ~reachable(clf, points, factuals, goal, tau=tau)[:, None]
    if sparse:
        x_cf = sparsify(clf, factuals, x_cf, goal, threshold, units)
    x, x_cf = np.asarray(factuals), np.asarray(x_cf)
    d = x_cf.shape[2]
    cfs, changed = raw_counterfactuals(encoder, rows, x, x_cf, CONTINUOUS_TOLERANCE)
    x_cf = encoder.encode(cfs).reshape(n, K, d)  # judged as returned: the raw row re-encoded
    p, valid = _validity(clf, factuals, x_cf, goal, threshold)
    already = np.asarray(_validity(clf, factuals, factuals[:, None], goal, threshold)[1])[:, 0]
    if already.any():
        warnings.warn(
            f"{int(already.sum())} of {n} rows are already predicted as the target (p >= {tau:g}); "
            "see the column 'already_target'",
            stacklevel=2,
        )
    valid = np.asarray(valid)
    status, reason = _status(valid, restarted, no_point, nowhere, outcome, np.asarray(p), restarts, tau)
    missing = int((~valid.any(1)).sum())
    if missing:
        warnings.warn(
            f"{missing} of {n} rows have no valid counterfactual; see the columns 'status' and 'reason'", stacklevel=2
        )
    frame = _frame(
        encoder,
        rows,
        x,
        x_cf,
        cfs,
        changed,
        np.asarray(p),
        valid,
        already,
        outcome,
        float(res.runtime_s),
        float(res.compile_s),
    )
    frame["status"], frame["reason"] = status.reshape(-1), reason.reshape(-1)
    return frame


def _status(valid, restarted, no_point, nowhere, outcome, p, restarts, tau):
    """Per counterfactual: found / restarted / not_found, and why where it is not found."""
    status = np.where(valid, np.where(restarted, "restarted", "found"), "not_found").astype(object)
    reason = np.full(valid.shape, "", dtype=object)
    searched = (
        np.vectorize(lambda o, q: f"the search ended {OUTCOMES[o]} at p(target) = {q:.3f} < {tau:g}")(outcome, p)
        if (~valid).any()
        else reason
    )
    reason = np.where(~valid, searched, reason)
    if restarts:
        reason = np.where(
            ~valid & no_point,
            "no training row stays valid under this row's constraints (immutable "
            "features, directions, bounds): a counterfactual very likely does not exist",
            reason,
        )
        reason = np.where(
            ~valid & nowhere,
            f"the model predicts the target (p >= {tau:g}) for none of the "
            "training rows, constraints or not: the model, not the constraints, rules it out",
            reason,
        )
        reason = np.where(
            ~valid & restarted,
            f"its restart was valid but the raw row (rounded to the columns' precision) scores p(target) < {tau:g}",
            reason,
        )
    return status, reason


# ----------------------------------------------------------------------------- inputs
def _renamed(classifier, data, options: dict):
    """The deprecated argument names ``model=`` and ``dataset=`` (one release, with a warning)."""
    for old, new, value in (("model", "classifier", classifier), ("dataset", "data", data)):
        if old in options:
            warnings.warn(
                f"explain(..., {old}=) is deprecated and goes in cfx 0.3: use {new}= (as cfx.generate and "
                "cfx.evaluate name it)",
                DeprecationWarning,
                stacklevel=3,
            )
            if value is not None:
                raise TypeError(f"explain() got {new}= and its deprecated name {old}=")
            if old == "model":
                classifier = options.pop(old)
            else:
                data = options.pop(old)
    if classifier is None:
        raise TypeError("explain() needs the classifier (its first argument)")
    if data is None:
        raise TypeError("explain() needs data=, the training Dataset (its encoder and constraints)")
    return classifier, data


def _inputs(model, rows, dataset):
    if not isinstance(model, Classifier):
        raise TypeError(
            f"classifier must be a cfx.Classifier (e.g. from cfx.models.fit); got {type(model).__name__}"
            f"{checks.model_hint(model)}"
        )
    if not isinstance(dataset, Dataset):
        raise TypeError(f"data must be a cfx.data.Dataset; got {type(dataset).__name__}")
    if dataset.encoder is None:
        raise ValueError(
            f"data: {dataset.name!r} has no fitted encoder; use a tabular data set "
            "(cfx.data.load of a real tabular set, or cfx.data.from_frame)"
        )
    if len(rows) == 0:
        raise ValueError("rows is empty: pass at least one row")
    X = dataset.encoder.encode(rows)
    if X.shape[1] != model.n_features:
        raise ValueError(f"classifier expects {model.n_features} features; data's encoder gives {X.shape[1]}")
    return model, dataset.encoder, X


def _generator(generator, hyperparams: dict, dataset, clf) -> G.Generator:
    if isinstance(generator, G.Generator):
        if hyperparams:
            bad = sorted(set(hyperparams) - {f.name for f in dataclasses.fields(generator)})
            if bad:
                raise ValueError(
                    f"unknown option(s) {bad}: not a field of {type(generator).__name__} nor one of {SEARCH_OPTIONS}"
                )
            generator = generator.replace(**hyperparams)
        return generator
    if not isinstance(generator, str):
        raise TypeError(
            f"generator must be a registry name or a cfx.generators.Generator; got {type(generator).__name__}"
        )
    spelled = generator.lower().replace("_", "-")
    # explain's "dice" (and "dice-ml") is DiCE as dice-ml runs it (DICE_ML_DEFAULTS); "dice-cejl" keeps CE.jl's loss
    reference = spelled in ("dice", "dice-ml")
    generator = "dice" if spelled in ("dice-ml", "dice-cejl") else generator
    try:
        known = G.hyperparameters(generator)
    except ValueError as err:
        raise ValueError(f"generator: {err}") from None
    bad = sorted(set(hyperparams) - set(known) - {"num_counterfactuals"})
    if bad:
        raise ValueError(
            f"unknown option(s) {bad} for generator {generator!r}: expected a hyperparameter "
            f"({sorted(known)}) or a search option {SEARCH_OPTIONS}"
        )
    name = G.ALIASES.get(generator.lower(), generator.lower())
    hp = {**EXPLAIN_DEFAULTS.get(name, {}), **(DICE_ML_DEFAULTS if reference else {}), **hyperparams}
    dice_ml = reference and not {"cost", "feature_weights", "space"} & set(hyperparams)
    if dice_ml and getattr(dataset, "encoder", None) is not None:
        # dice-ml's distance: inverse-MAD weights, the proximity averaged over its d' encoded columns
        hp["feature_weights"], width = dice_ml_feature_weights(dataset)
        hp["cost"] = DICE_PROXIMITY / width
    gen = G.make(name, data=dataset, classifier=clf, **hp)
    if dice_ml:  # dice-ml's search space: each feature min-max scaled to [0, 1] (Adam's steps are 5 % of a range)
        lo, hi = np.asarray(dataset.schema.lower, np.float64), np.asarray(dataset.schema.upper, np.float64)
        dtype = float_dtype()
        gen = gen.replace(
            space="standardized",
            space_mean=jnp.asarray(lo, dtype),
            space_scale=jnp.asarray(np.where(hi > lo, hi - lo, 1.0), dtype),
        )
    return gen


# ----------------------------------------------------------------------------- DiCE's pool
def _runs(gen, K: int, runs, named: bool) -> int:
    """Searches per row: ``runs``, or DICE_RUNS for DiCE named by its registry name (explain's
    defaults apply to named generators), else 1."""
    if runs is None:
        return DICE_RUNS if named and isinstance(gen, DiCE) and K > 1 else 1
    if isinstance(runs, bool) or not isinstance(runs, (int, np.integer)) or runs < 1:
        raise ValueError(f"runs must be an int >= 1; got {runs!r}")
    return int(runs)


# ----------------------------------------------------------------------------- the frame
def _frame(encoder, rows, x, x_cf, cfs, changed, p, valid, already, outcome, runtime_s, compile_s) -> pd.DataFrame:
    n, K, d = x_cf.shape
    names = encoder.feature_names
    diffs = np.abs(x_cf[:, :, None] - x_cf[:, None]).sum(-1)  # (n, K, K) pairwise L1
    diversity = diffs.sum((1, 2)) / (K * (K - 1)) if K > 1 else np.full(n, np.nan)
    out = cfs.copy()
    out["valid"] = valid.reshape(-1)
    out["p_target"] = p.reshape(-1).astype(np.float64)
    out["cost"] = np.abs(x_cf - x[:, None]).sum(-1).reshape(-1).astype(np.float64)
    out["n_changed"] = changed.sum(1)
    out["changed"] = [tuple(np.asarray(names)[row]) for row in changed]
    out["diversity"] = np.repeat(diversity, K).astype(np.float64)
    out["duplicate"] = _duplicates(cfs, n, K)
    out["outcome"] = [OUTCOMES[o] for o in outcome.reshape(-1)]
    out["already_target"] = np.repeat(already, K)
    out.index = pd.MultiIndex.from_arrays(
        [np.repeat(np.asarray(rows.index), K), np.tile(np.arange(K), n)], names=["id", "cf"]
    )
    out.attrs.update(factuals=rows[list(names)].copy(), runtime_s=runtime_s, compile_s=compile_s)
    return out


def _duplicates(cfs: pd.DataFrame, n: int, K: int) -> np.ndarray:
    """True where a counterfactual's raw values repeat an earlier one of the same factual."""
    keyed = cfs.copy()
    keyed["__row"] = np.repeat(np.arange(n), K)
    return keyed.duplicated(keep="first").to_numpy()


__all__ = ["explain", "sparsify", "spread_starts", "most_diverse", "EXPLAIN_DEFAULTS", "DICE_ML_DEFAULTS", "DICE_RUNS"]

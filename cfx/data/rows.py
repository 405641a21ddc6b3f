"""Rows as users hold them, for :func:`cfx.explain`: a DataFrame, a Series or a dict in; per-call
constraints by column name (DiCE's vocabulary); raw counterfactuals out in the input's own
values and dtypes.

Everything here runs on the host before (constraints, checks) or after (the output frame) the
compiled search; errors name the argument, the column and, where one is at fault, the row.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from cfx.constraints import Constraints
from cfx.data.dataset import Dataset
from cfx.data.encoder import TabularEncoder

#: the directions each mutability code allows; per-call codes intersect the schema's
_DIRECTIONS = {"both": {"+", "-"}, "increase": {"+"}, "decrease": {"-"}, "none": set()}
_CODE = {frozenset(v): k for k, v in _DIRECTIONS.items()}
ORDERED = ("continuous", "integer", "ordinal")


def as_frame(rows) -> pd.DataFrame:
    """A DataFrame of raw rows; a Series (one row, its name the id) or a dict (one row, id 0)."""
    if isinstance(rows, pd.Series):
        return pd.DataFrame([rows.to_dict()], index=[0 if rows.name is None else rows.name])
    if isinstance(rows, Mapping):
        if any(isinstance(v, (list, tuple, np.ndarray, pd.Series)) for v in rows.values()):
            raise TypeError("rows: a dict is one row (column -> value); pass a DataFrame for several rows")
        return pd.DataFrame([dict(rows)])
    if not isinstance(rows, pd.DataFrame):
        raise TypeError(
            f"rows must be a pandas DataFrame of raw values (or a Series / dict for one row); got {type(rows).__name__}"
        )
    return rows


def _plain(v):
    """A numpy scalar as the Python value (so messages read 1.0, not np.float64(1.0))."""
    return v.item() if isinstance(v, np.generic) else v


def _excluded(col: str, rng, values: pd.Series, outside) -> ValueError:
    i = np.flatnonzero(np.asarray(outside))[0]
    return ValueError(
        f"permitted_range[{col!r}] = {rng!r} excludes the value {_plain(values.iloc[i])!r} of row "
        f"{_plain(values.index[i])!r}"
    )


def _names(arg: str, value, encoder: TabularEncoder) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    known = list(encoder.feature_names)
    names = list(value)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"{arg}: unknown column(s) {unknown}; the features are {known}")
    return names


def call_constraints(
    dataset: Dataset,
    rows: pd.DataFrame,
    *,
    features_to_vary: Sequence[str] | str | None = None,
    permitted_range: Mapping[str, object] | None = None,
    immutable: Sequence[str] | None = None,
    increase_only: Sequence[str] | None = None,
    decrease_only: Sequence[str] | None = None,
) -> Constraints:
    """The data set's constraints tightened by per-call ones (nothing is rebuilt or refitted).

    Mutability: each column's allowed directions are the schema's ∩ the call's (not in
    ``features_to_vary``, or ``immutable``: none; ``increase_only``: +; ``decrease_only``: −).
    ``permitted_range``: column -> (lo, hi) in raw units for continuous/integer columns,
    (lowest level, highest level) for ordinal ones, a list of allowed levels for categorical and
    binary ones; it must lie inside the data's bounds and contain every row's value.
    """
    enc, schema = dataset.encoder, dataset.schema
    base = schema.constraints()
    names = list(enc.feature_names)
    kinds = {c.name: c.kind for c in enc.columns}
    allowed = {n: set(_DIRECTIONS["both"]) for n in names}
    if features_to_vary is not None and not (isinstance(features_to_vary, str) and features_to_vary == "all"):
        vary = set(_names("features_to_vary", features_to_vary, enc))
        for n in names:
            if n not in vary:
                allowed[n] = set()
    for arg, value, dirs in (
        ("immutable", immutable, set()),
        ("increase_only", increase_only, {"+"}),
        ("decrease_only", decrease_only, {"-"}),
    ):
        for n in _names(arg, value, enc):
            if dirs and kinds[n] not in ORDERED + ("binary",):
                raise ValueError(
                    f"{arg}: column {n!r} is {kinds[n]}; only ordered columns ({', '.join(ORDERED)}, "
                    "binary) can change in one direction"
                )
            allowed[n] &= dirs
    mutability = list(schema.mutability)
    lower, upper = np.array(schema.lower, np.float64), np.array(schema.upper, np.float64)
    for c, (a, b) in zip(enc.columns, enc.spans()):
        for j in range(a, b):
            mutability[j] = _CODE[frozenset(_DIRECTIONS[mutability[j]] & allowed[c.name])]
    for col, rng in (permitted_range or {}).items():
        if col not in kinds:
            raise ValueError(f"permitted_range: unknown column {col!r}; the features are {names}")
        c = enc.columns[names.index(col)]
        a, b = enc.spans()[names.index(col)]
        lower[a:b], upper[a:b] = _range(c, a, b, rng, enc, lower[a:b], upper[a:b], rows[col])
    return dataclasses.replace(base, mutability=tuple(mutability), lower=tuple(lower), upper=tuple(upper))


def _range(c, a, b, rng, enc, lo_z, hi_z, values: pd.Series):
    """The encoded bounds of columns a:b under ``permitted_range[c.name] = rng``."""
    if c.kind in ("categorical", "binary"):
        levels = [rng] if isinstance(rng, str) or not isinstance(rng, (list, tuple, set)) else list(rng)
        unknown = [v for v in levels if v not in set(c.levels)]
        if unknown or not levels:
            raise ValueError(
                f"permitted_range[{c.name!r}]: expected a list of its levels {list(c.levels)}; got {rng!r}"
            )
        outside = ~values.astype(object).isin(levels)
        if outside.any():
            raise _excluded(c.name, rng, values, outside)
        if c.kind == "binary":  # one column: 0 codes the first level, 1 the second
            codes = [c.levels.index(v) for v in levels]
            return np.array([min(codes)], float), np.array([max(codes)], float)
        keep = np.array([v in set(levels) for v in c.levels])
        return lo_z, np.where(keep, hi_z, 0.0)  # a level outside the range can never be the group's 1
    if not (isinstance(rng, (list, tuple)) and len(rng) == 2):
        raise ValueError(f"permitted_range[{c.name!r}]: expected (lo, hi); got {rng!r}")
    lo, hi = rng
    if c.kind == "ordinal":
        bad = [v for v in (lo, hi) if v not in set(c.levels)]
        if bad:
            raise ValueError(f"permitted_range[{c.name!r}]: {bad[0]!r} is not a level of {list(c.levels)}")
        lo, hi = c.levels.index(lo), c.levels.index(hi)
        raw = values.map({v: i for i, v in enumerate(c.levels)}).astype(float)
    else:
        if not all(isinstance(v, (int, float, np.integer, np.floating)) and np.isfinite(v) for v in (lo, hi)):
            raise ValueError(f"permitted_range[{c.name!r}]: bounds must be finite numbers; got {rng!r}")
        raw = values.astype(float)
    if lo > hi:
        raise ValueError(f"permitted_range[{c.name!r}]: lo > hi in {rng!r}")
    mean, scale = enc.mean[a], enc.scale[a]
    z = (np.array([lo, hi], np.float32) - mean) / scale  # the float32 ops of encode
    data_lo, data_hi = float(lo_z[0]) * scale + mean, float(hi_z[0]) * scale + mean
    tol = 1e-6 * (1 + abs(z).max())
    if z[0] < lo_z[0] - tol or z[1] > hi_z[0] + tol:
        raise ValueError(
            f"permitted_range[{c.name!r}] = {rng!r} reaches outside the data's bounds [{data_lo:.6g}, {data_hi:.6g}]"
        )
    outside = (raw < lo) | (raw > hi)
    if outside.any():
        raise _excluded(c.name, rng, values, outside)
    return np.array([z[0]], float), np.array([z[1]], float)


def raw_counterfactuals(
    encoder: TabularEncoder, rows: pd.DataFrame, x: np.ndarray, x_cf: np.ndarray, tolerance: float
) -> tuple[pd.DataFrame, np.ndarray]:
    """The (n·K) raw counterfactuals as the user holds the rows, and which cells changed.

    A cell counts as changed when the decoded value differs from the row's (discrete columns), or,
    for continuous ones, when it moved by more than ``tolerance`` (standardised units) and still
    differs after rounding to the column's precision. Unchanged cells are the row's own values,
    copied exactly; each column takes the row's dtype (ints stay ints, a CategoricalDtype stays).
    """
    n, K, d = x_cf.shape
    names = list(encoder.feature_names)
    facts = rows[names].iloc[np.repeat(np.arange(n), K)].reset_index(drop=True)  # by position: ids may repeat
    cfs = encoder.decode(x_cf.reshape(n * K, d))
    moved = np.abs(x_cf - x[:, None]).reshape(n * K, d)
    changed = np.zeros((n * K, len(names)), bool)
    for j, (c, (a, b)) in enumerate(zip(encoder.columns, encoder.spans())):
        differs = cfs[c.name].astype(object).to_numpy() != facts[c.name].astype(object).to_numpy()
        if c.kind == "continuous":
            differs &= moved[:, a:b].max(1) > tolerance
        changed[:, j] = differs
        values = np.where(differs, cfs[c.name].astype(object).to_numpy(), facts[c.name].astype(object).to_numpy())
        cfs[c.name] = _restore(values, facts[c.name].dtype, cfs[c.name].dtype)
    return cfs, changed


def _restore(values: np.ndarray, dtype, fallback) -> pd.Series:
    """``values`` in the input's dtype where that loses nothing (else the decoded dtype)."""
    if isinstance(dtype, pd.CategoricalDtype):
        extra = [v for v in pd.unique(values) if v not in set(dtype.categories)]  # a level the rows' dtype lacks
        if extra:
            dtype = pd.CategoricalDtype(list(dtype.categories) + extra, ordered=dtype.ordered)
        return pd.Series(values, dtype=object).astype(dtype)
    for target in (dtype, fallback):
        try:
            s = pd.Series(values, dtype=object).astype(target)
        except (TypeError, ValueError):
            continue
        if pd.api.types.is_integer_dtype(target) and not np.array_equal(
            s.to_numpy(np.float64), np.asarray(values, np.float64)
        ):
            continue  # a fractional value would be truncated
        return s
    return pd.Series(values, dtype=object).infer_objects()


__all__ = ["as_frame", "call_constraints", "raw_counterfactuals"]

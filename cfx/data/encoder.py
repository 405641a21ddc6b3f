"""The fitted tabular encoder: a raw DataFrame <-> the model matrix X, both ways.

A :class:`TabularEncoder` is fitted once (on the whole file by the loaders, so every level of
every categorical is known; standardisation statistics on the training split only, see
:meth:`cfx.data.Dataset.standardize`) and stored on the :class:`~cfx.data.Dataset`. It never
looks at the frame it encodes to decide the layout: a single row, or a subset lacking some
levels, encodes to the same d columns.

Feature kinds (one per raw column):

* ``continuous``: one column, x = (raw − mean) / scale; decoded values are rounded to the
  column's precision (the most decimals a value of the fitted column has, up to 6);
* ``integer``: like continuous, but the raw value is an integer (counterfactuals are rounded
  on the raw scale: :class:`cfx.Constraints` ``integer_features``); declared, or inferred from
  an integer dtype when ``fit(infer_integer=True)`` (``cfx.data.from_frame``);
* ``ordinal``: the code of its level in a given order (0, 1, ...), then as ``integer``;
* ``categorical``: one-hot group ``<column>_<level>`` over every level (sorted by str);
* ``binary``: one 0/1 column; both levels are stored, so decode names the 0-level too.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from cfx import _deprecated

COLUMN_KINDS = ("continuous", "integer", "ordinal", "categorical", "binary")
GRID_KINDS = ("integer", "ordinal")  # searched relaxed, returned on the integer grid of the raw scale


def level_name(level) -> str:
    """A category level as a column-name suffix: ``str(level)`` stripped, spaces as underscores."""
    return str(level).strip().replace(" ", "_")


@dataclasses.dataclass(frozen=True)
class Column:
    """One raw column: its kind, its levels (categorical: every level in encoded order; binary:
    (0-level, 1-level); ordinal: the order) and the dtype decode restores."""

    name: str
    kind: str
    levels: tuple = ()
    dtype: str = "float64"
    decimals: int | None = None  # continuous: decode rounds to this many decimals (None: no rounding)

    @property
    def width(self) -> int:
        """Encoded columns this raw column takes: one per level if categorical, else 1."""
        return len(self.levels) if self.kind == "categorical" else 1

    def encoded_names(self) -> tuple[str, ...]:
        """The names of its encoded columns (``<name>_<level>`` for categorical levels)."""
        if self.kind == "categorical":
            return tuple(f"{self.name}_{level_name(v)}" for v in self.levels)
        if self.kind == "binary" and self.levels != (0, 1):  # a named 1-level: <column>_<level>
            return (f"{self.name}_{level_name(self.levels[1])}",)
        return (self.name,)


MAX_DECIMALS = 6


def precision(values: np.ndarray) -> int | None:
    """The fewest decimals k <= 6 that represent every value (up to float64 noise), or None."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    for k in range(MAX_DECIMALS + 1):
        if np.all(np.abs(np.round(v, k) - v) <= 1e-9 * np.maximum(1.0, np.abs(v))):
            return k
    return None


def _fit_column(
    name: str, s: pd.Series, *, onehot: bool, binary, ordinal, integer: bool, infer_integer: bool = False
) -> Column:
    values = s.dropna().unique()
    dtype = str(s.dtype)
    if ordinal is not None:
        order = tuple(ordinal)
        if len(set(order)) != len(order):
            raise ValueError(f"ordinal column {name!r}: the order {list(order)} repeats a level")
        missing = [v for v in values if v not in set(order)]
        if missing:
            raise ValueError(
                f"ordinal column {name!r}: the order {list(order)} omits the level(s) {sorted(missing, key=str)}"
            )
        return Column(name, "ordinal", order, dtype)
    if onehot:
        return Column(name, "categorical", tuple(sorted(values, key=str)), dtype)
    if binary is not None:
        if isinstance(binary, tuple) and len(binary) == 2:
            levels = binary
        else:
            others = [v for v in values if v != binary]
            if len(others) != 1 or binary not in set(values):
                raise ValueError(
                    f"binary column {name!r} must have two levels, one of them {binary!r}; got {list(values)[:5]}"
                )
            levels = (others[0], binary)
        extra = [v for v in values if v not in set(levels)]
        if extra:
            raise ValueError(f"binary column {name!r}: levels {extra} beyond {list(levels)}")
        return Column(name, "binary", tuple(levels), dtype)
    numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
    if not numeric:  # strings, booleans, categories: two levels a binary column, more a one-hot group
        levels = tuple(sorted(values, key=str))
        if len(levels) == 2:
            return Column(name, "binary", levels, dtype)
        return Column(name, "categorical", levels, dtype)
    if integer:
        _check_integral(name, s.to_numpy(np.float64))
        return Column(name, "integer", (), dtype)
    if set(np.unique(s.to_numpy())) <= {0, 1}:
        return Column(name, "binary", (0, 1), dtype)
    if infer_integer and s.dtype.kind in "iu":  # an int64 age is an integer feature, not 51.246895
        return Column(name, "integer", (), dtype)
    return Column(name, "continuous", (), dtype, precision(s.to_numpy(np.float64)))


def _check_integral(name: str, values: np.ndarray) -> None:
    frac = np.isfinite(values) & (values != np.round(values))
    if frac.any():
        raise ValueError(f"integer column {name!r} holds a fractional value ({values[frac][0]!r})")


@dataclasses.dataclass(frozen=True, eq=False)
class TabularEncoder:
    """Raw DataFrame <-> X (float32, n x d); X = (raw_encoded − mean) / scale per column.

    Attributes:
      columns: the raw columns in order (:class:`Column`).
      mean, scale: (d,) float32 standardisation of the encoded columns (0 and 1 until
        :meth:`standardized`; one-hot and binary columns always 0 and 1).
      passthrough: columns a frame may carry that are not features (the label, an id); ignored.

    Example::

        enc = TabularEncoder.fit(frame, categorical=["colour"], integer=["age"])
        X = enc.encode(frame)            # (n, d) float32
        enc.decode(X)                    # the same frame (levels, integers, dtypes)
    """

    columns: tuple[Column, ...]
    mean: np.ndarray
    scale: np.ndarray
    passthrough: tuple[str, ...] = ()

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        *,
        categorical: Sequence[str] = (),
        binary: Mapping[str, object] | None = None,
        ordinal: Mapping[str, Sequence] | None = None,
        integer: Sequence[str] = (),
        passthrough: Sequence[str] = (),
        infer_integer: bool = False,
    ) -> "TabularEncoder":
        """Fit the layout on ``frame`` (every level it holds is kept).

        ``categorical``: columns one-hot encoded; ``binary``: column -> its 1-level (or a
        (0-level, 1-level) pair); ``ordinal``: column -> its levels in order (must list every
        level); ``integer``: numeric columns on the integer grid. Undeclared string/bool columns
        are binary (two levels) or categorical; numeric 0/1 columns binary; others continuous
        (``infer_integer``: integer if their dtype is an integer dtype).
        """
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"frame must be a pandas DataFrame; got {type(frame).__name__}")
        binary, ordinal = dict(binary or {}), dict(ordinal or {})
        declared = set(categorical) | set(binary) | set(ordinal) | set(integer)
        unknown = sorted(declared - set(frame.columns))
        if unknown:
            raise ValueError(
                f"frame: declared column(s) {unknown} are not in the frame (columns: {list(frame.columns)})"
            )
        cols = []
        for name in frame.columns:
            if name in passthrough:
                continue
            s = frame[name]
            if s.isna().any():
                raise ValueError(f"column {name!r} has {int(s.isna().sum())} missing values (NaN)")
            cols.append(
                _fit_column(
                    name,
                    s,
                    onehot=name in categorical,
                    binary=binary.get(name),
                    ordinal=ordinal.get(name),
                    integer=name in integer,
                    infer_integer=infer_integer,
                )
            )
        d = sum(c.width for c in cols)
        return cls(tuple(cols), np.zeros(d, np.float32), np.ones(d, np.float32), tuple(passthrough))

    # ------------------------------------------------------------------ layout
    @property
    def names(self) -> tuple[str, ...]:
        """The d encoded column names."""
        return tuple(n for c in self.columns for n in c.encoded_names())

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The raw column names (as decode returns them)."""
        return tuple(c.name for c in self.columns)

    def spans(self) -> list[tuple[int, int]]:
        """(start, stop) of each raw column's encoded columns."""
        out, start = [], 0
        for c in self.columns:
            out.append((start, start + c.width))
            start += c.width
        return out

    def kinds(self) -> tuple[str, ...]:
        """The kind of each of the d encoded columns."""
        return tuple(c.kind for c in self.columns for _ in range(c.width))

    def groups(self) -> tuple[tuple[int, ...], ...]:
        """One-hot groups and single binary columns (the schema's ``categorical_groups``)."""
        return tuple(
            tuple(range(a, b)) for c, (a, b) in zip(self.columns, self.spans()) if c.kind in ("categorical", "binary")
        )

    def units(self) -> np.ndarray:
        """(d,) int: the raw column each encoded column belongs to."""
        return np.repeat(np.arange(len(self.columns)), [c.width for c in self.columns])

    def standardized(self, mean: np.ndarray, scale: np.ndarray) -> "TabularEncoder":
        """The encoder followed by x -> (x − mean) / scale (composed with any earlier scaling)."""
        mean, scale = np.asarray(mean, np.float32), np.asarray(scale, np.float32)
        if self.mean.any() or (self.scale != 1).any():
            mean, scale = self.mean + self.scale * mean, self.scale * scale
        return dataclasses.replace(self, mean=mean.astype(np.float32), scale=scale.astype(np.float32))

    # ------------------------------------------------------------------ both ways
    def encode_raw(self, frame: pd.DataFrame) -> np.ndarray:
        """The encoded columns before standardisation, (n, d) float64 (checks as :meth:`encode`)."""
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"rows must be a pandas DataFrame; got {type(frame).__name__}")
        known = set(self.feature_names) | set(self.passthrough)
        unknown = [c for c in frame.columns if c not in known]
        if unknown:
            raise ValueError(f"rows: unknown column(s) {unknown}; expected the columns {list(self.feature_names)}")
        missing = [c for c in self.feature_names if c not in frame.columns]
        if missing:
            raise ValueError(f"rows: missing column(s) {missing}")
        blocks = [_encode_column(c, frame[c.name]) for c in self.columns]
        return np.column_stack(blocks) if blocks else np.zeros((len(frame), 0))

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """X (n, d) float32 for the rows of ``frame``. Raises ValueError naming the column for an
        unknown or missing column, a NaN, an unseen level, a non-numeric value in a numeric
        column or a fractional value in an integer column."""
        raw = self.encode_raw(frame).astype(np.float32)
        return ((raw - self.mean) / self.scale).astype(np.float32)  # the same float32 ops as Standardizer

    def decode(self, X, index=None) -> pd.DataFrame:
        """The raw frame of X (n, d) or (d,): numbers unscaled, integers and ordinals rounded,
        one-hot groups by argmax, binary columns by their level (>= 0.5: the 1-level)."""
        X = np.asarray(X, np.float32)
        if X.ndim == 1:
            X = X[None]
        d = len(self.mean)
        if X.ndim != 2 or X.shape[1] != d:
            raise ValueError(f"X must have shape (n, {d}); got {X.shape}")
        raw = (X * self.scale + self.mean).astype(np.float64)
        out = {}
        for c, (a, b) in zip(self.columns, self.spans()):
            v = raw[:, a]
            if c.kind == "continuous":
                v = v if c.decimals is None else np.round(v, c.decimals)
                out[c.name] = pd.Series(v, dtype="float64" if "int" in c.dtype else c.dtype)
            elif c.kind == "integer":
                out[c.name] = pd.Series(np.rint(v).astype(np.int64)).astype(c.dtype)
            elif c.kind == "ordinal":
                codes = np.clip(np.rint(v), 0, len(c.levels) - 1).astype(int)
                out[c.name] = _levels(c, codes)
            elif c.kind == "categorical":
                out[c.name] = _levels(c, np.argmax(raw[:, a:b], axis=1))
            else:
                out[c.name] = _levels(c, (v >= 0.5).astype(int))
        frame = pd.DataFrame(out)
        if index is not None:
            frame.index = pd.Index(index)
        return frame


def _levels(c: Column, codes: np.ndarray) -> pd.Series:
    values = np.empty(len(c.levels), object)
    values[:] = list(c.levels)
    s = pd.Series(values[codes])
    try:
        return s.astype(c.dtype)
    except (TypeError, ValueError):
        return s


def _row(s: pd.Series, mask) -> str:
    """'row <index label>' of the first row where ``mask`` holds."""
    label = s.index[np.flatnonzero(np.asarray(mask))[0]]
    return f"row {label.item() if isinstance(label, np.generic) else label!r}"


def _encode_column(c: Column, s: pd.Series) -> np.ndarray:
    if s.isna().any():
        raise ValueError(
            f"column {c.name!r} has {int(s.isna().sum())} missing values (NaN; first at {_row(s, s.isna())})"
        )
    if c.kind in ("continuous", "integer"):
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            numbers = pd.to_numeric(s, errors="coerce") if not pd.api.types.is_bool_dtype(s) else s * np.nan
            where = (
                f" ({_row(s, numbers.isna())}: {s[numbers.isna().to_numpy()].iloc[0]!r})"
                if numbers.isna().any()
                else ""
            )
            raise ValueError(f"column {c.name!r} is {c.kind} but holds dtype {s.dtype} (expected numbers){where}")
        v = s.to_numpy(np.float64)
        if not np.isfinite(v).all():
            raise ValueError(f"column {c.name!r} holds a non-finite value ({_row(s, ~np.isfinite(v))})")
        if c.kind == "integer":
            frac = np.isfinite(v) & (v != np.round(v))
            if frac.any():
                raise ValueError(
                    f"integer column {c.name!r} holds a fractional value ({_row(s, frac)}: {v[frac][0]!r})"
                )
        return v[:, None]
    levels = list(c.levels)
    try:
        codes = pd.Index(levels, dtype=object).get_indexer(s.astype(object))
    except TypeError:  # unhashable values
        raise ValueError(
            f"column {c.name!r} holds values of dtype {s.dtype}; expected one of the levels {levels}"
        ) from None
    if (codes < 0).any():
        bad = s[codes < 0].iloc[0]
        raise ValueError(f"column {c.name!r}: unseen level {bad!r} at {_row(s, codes < 0)} (known levels: {levels})")
    if c.kind == "ordinal":
        return codes.astype(np.float64)[:, None]
    if c.kind == "binary":
        return (codes == 1).astype(np.float64)[:, None]
    return np.eye(len(levels))[codes]


# renamed in cfx 0.2 ("kinds" are experiment kinds; these are kinds of column)
__getattr__ = _deprecated.module_aliases("cfx.data.encoder", {"KINDS": ("cfx.data.encoder", "COLUMN_KINDS")})

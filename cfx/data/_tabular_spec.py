"""How a DataFrame becomes a :class:`Dataset`: :class:`TabularSpec`, :func:`encode` and :func:`from_frame`.

The conventions (labels, encoding, bounds, kinds, mutability) are those of :mod:`cfx.data.tabular`'s
docstring ("see module docstring" below means that one); re-exported from there.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from cfx.data.dataset import Dataset, FeatureSchema
from cfx.data.encoder import TabularEncoder


def _column(label: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda df: df[label]


@dataclasses.dataclass(frozen=True)
class TabularSpec:
    """How to turn one CSV file into a :class:`Dataset`.

    Attributes:
      name, path: registry name and path relative to the data directory.
      label: label column (removed from the features).
      description: one line for :func:`cfx.data.list_datasets`.
      source: where to obtain the file (used in the missing-file error).
      target: maps the cleaned frame to 0/1 labels with 1 favourable (default: the label column).
      clean: optional frame -> frame step run first (drop rows, rename codes).
      drop: further columns that are not features.
      binary: two-level categorical column -> the level coded as 1.
      onehot: categorical columns expanded into one-hot groups.
      mutability: column -> mutability (default "both"); applies to all columns of a group.
      integer: numeric columns holding integers (searched relaxed, returned rounded).
      ordinal: column -> its levels in order (encoded as the level's rank 0, 1, ...).
      bounds: column -> (lower, upper) in raw units (default: the column's range in the file).
      n_classes: the labels are 0 .. n_classes − 1 (2: binary).
    """

    name: str
    path: str
    label: str
    description: str
    source: str
    target: Callable[[pd.DataFrame], pd.Series] | None = None
    clean: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    drop: tuple[str, ...] = ()
    binary: Mapping[str, object] = dataclasses.field(default_factory=dict)
    onehot: tuple[str, ...] = ()
    mutability: Mapping[str, str] = dataclasses.field(default_factory=dict)
    integer: tuple[str, ...] = ()
    ordinal: Mapping[str, tuple] = dataclasses.field(default_factory=dict)
    bounds: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    n_classes: int = 2


def encode(df: pd.DataFrame, spec: TabularSpec, *, infer: bool = False) -> Dataset:
    """Clean, label and encode ``df`` according to ``spec`` (see module docstring).

    The :class:`TabularEncoder` is fitted here, on the whole cleaned file, and stored on the
    Dataset (``data.encoder``): new frames are encoded with it, never with a refit. Row ids are
    the frame's index after cleaning (the row's position in the file). ``infer``: undeclared
    non-numeric columns become binary (two levels) or one-hot groups instead of an error, and
    columns of an integer dtype integer features.
    """
    if spec.clean is not None:
        df = spec.clean(df)
    y = (spec.target or _column(spec.label))(df)
    if y.isna().any() or not set(np.unique(y.to_numpy())) <= set(range(spec.n_classes)):
        hint = "" if spec.n_classes > 2 else " (a two-level label: pass positive=; more classes: classes=[...])"
        raise ValueError(
            f"{spec.name}: label {spec.label!r} does not map to 0..{spec.n_classes - 1}{hint} (values "
            f"{sorted(set(y), key=str)[:5]})"
        )
    features = df.drop(columns=[spec.label, *spec.drop])
    declared = set(spec.mutability) | set(spec.binary) | set(spec.onehot) | set(spec.integer) | set(spec.ordinal)
    unknown = (declared | set(spec.bounds)) - set(features.columns)
    if unknown:
        raise ValueError(f"{spec.name}: spec names columns not in the file: {sorted(unknown)}")
    for col in features.columns:
        s = features[col]
        if s.isna().any():
            raise ValueError(f"{spec.name}: column {col!r} has {int(s.isna().sum())} missing values")
        if not (
            infer or pd.api.types.is_numeric_dtype(s) or col in spec.onehot or col in spec.binary or col in spec.ordinal
        ):
            raise ValueError(f"{spec.name}: column {col!r} is not numeric and the spec gives no encoding for it")
    encoder = TabularEncoder.fit(
        features,
        categorical=spec.onehot,
        binary=spec.binary,
        ordinal=spec.ordinal,
        integer=spec.integer,
        passthrough=(spec.label, *spec.drop),
        infer_integer=infer,
    )
    X = encoder.encode(features)
    mut, lower, upper = [], [], []
    for c, (a, b) in zip(encoder.columns, encoder.spans()):
        if c.kind in ("continuous", "integer"):
            lo, hi = spec.bounds.get(c.name, (X[:, a].min(), X[:, a].max()))
        elif c.kind == "ordinal":
            lo, hi = 0, len(c.levels) - 1
        else:
            lo, hi = 0, 1
        for _ in range(a, b):
            # Bounds as float32 values, the precision X is stored in, so min/max rows sit exactly on them.
            lower.append(float(np.float32(lo)))
            upper.append(float(np.float32(hi)))
            mut.append(spec.mutability.get(c.name, "both"))
    schema = FeatureSchema(
        encoder.names, tuple(mut), tuple(lower), tuple(upper), encoder.groups(), kinds=encoder.kinds()
    )
    ids = features.index.to_numpy()
    return Dataset(X, y.to_numpy().astype(np.int32), schema, name=spec.name, encoder=encoder, ids=ids)


def from_frame(
    frame: pd.DataFrame,
    label: str,
    *,
    name: str = "frame",
    categorical: Sequence[str] = (),
    binary: Mapping[str, object] | None = None,
    ordinal: Mapping[str, Sequence] | None = None,
    integer: Sequence[str] = (),
    mutability: Mapping[str, str] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    drop: Sequence[str] = (),
    positive: object = None,
    classes: Sequence | None = None,
) -> Dataset:
    """A :class:`Dataset` (raw units, fitted encoder) from a DataFrame you hold.

    ``label`` is a 0/1 column (1 favourable), or a two-level column (``"yes"``/``"no"``) with
    ``positive`` its favourable level (y = 1 where label == positive), or a multi-class column
    with ``classes`` its levels in class order (y = c where label == classes[c]); the other arguments are as in :class:`TabularSpec`
    (``categorical`` = one-hot columns; undeclared string columns are categorical too, undeclared
    columns of an integer dtype (int64 ages, counts) integer features);
    ``bounds`` (column -> (lower, upper), raw units) default to the column's range. Row ids are
    the frame's index. Then ``cfx.data.train_test(data)`` standardises as for the real sets.

    Example::

        data = cfx.data.from_frame(df, "approved", integer=["age"], ordinal={"grade": ["C", "B", "A"]})
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame; got {type(frame).__name__}")
    if label not in frame.columns:
        raise ValueError(f"label: column {label!r} is not in the frame (columns: {list(frame.columns)})")
    target, n_classes = None, 2
    if positive is not None and classes is not None:
        raise ValueError("positive and classes: pass one (positive: a two-level label; classes: its levels in order)")
    if classes is not None:
        classes = list(classes)
        unknown = sorted(set(pd.unique(frame[label].dropna())) - set(classes), key=str)
        if len(classes) < 2 or len(set(classes)) != len(classes) or unknown:
            raise ValueError(
                f"classes: the label {label!r}'s levels in class order, each once, at least two; got "
                f"{classes!r}" + (f" (levels not in it: {unknown[:5]})" if unknown else "")
            )
        index = {v: i for i, v in enumerate(classes)}
        target = lambda df: df[label].map(index)  # noqa: E731
        n_classes = len(classes)
    if positive is not None:
        levels = list(pd.unique(frame[label].dropna()))
        if positive not in levels or len(levels) > 2:
            raise ValueError(
                f"positive: the label {label!r} must have two levels, one of them {positive!r}; "
                f"got {sorted(levels, key=str)[:5]}"
            )
        target = lambda df: (df[label] == positive).astype(int).where(df[label].notna())  # noqa: E731
    spec = TabularSpec(
        name=name,
        path="",
        label=label,
        description="",
        source="",
        drop=tuple(drop),
        target=target,
        binary=dict(binary or {}),
        onehot=tuple(categorical),
        mutability=dict(mutability or {}),
        integer=tuple(integer),
        ordinal={k: tuple(v) for k, v in (ordinal or {}).items()},
        bounds={k: tuple(v) for k, v in (bounds or {}).items()},
        n_classes=n_classes,
    )
    return encode(frame, spec, infer=True)

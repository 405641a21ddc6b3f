"""Dataset, FeatureSchema and the training-split standardiser (tabular data: the fitted encoder)."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import pandas as pd

from cfx._validate import float_dtype
from cfx.constraints import MUTABILITY, Constraints
from cfx.data.encoder import GRID_KINDS, COLUMN_KINDS, TabularEncoder


@dataclasses.dataclass(frozen=True)
class FeatureSchema:
    """What each feature is and how it may change.

    Attributes:
      names: feature names, length d.
      mutability: ``"both" | "increase" | "decrease" | "none"`` per feature.
      lower, upper: per-feature domain bounds (``-inf``/``inf`` when unbounded).
      categorical_groups: tuples of column indices that form one-hot groups.
      kinds: per column one of ``continuous | integer | ordinal | categorical | binary``
        (default: group columns categorical/binary, the rest continuous). Integer and ordinal
        columns are returned on the integer grid of the raw scale.
      raw_offset, raw_scale: raw = raw_offset + raw_scale · x per column (None: x is raw);
        set by :meth:`Dataset.standardize`, used to round integer columns on the raw scale.
    """

    names: tuple[str, ...]
    mutability: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    categorical_groups: tuple[tuple[int, ...], ...] = ()
    kinds: tuple[str, ...] | None = None
    raw_offset: tuple[float, ...] | None = None
    raw_scale: tuple[float, ...] | None = None

    def __post_init__(self):
        d = len(self.names)
        for field in ("mutability", "lower", "upper", "kinds", "raw_offset", "raw_scale"):
            value = getattr(self, field)
            if value is not None and len(value) != d:
                raise ValueError(f"FeatureSchema.{field} has {len(value)} entries; expected {d}")
        bad = [m for m in self.mutability if m not in MUTABILITY]
        if bad:
            raise ValueError(f"FeatureSchema.mutability entries must be one of {MUTABILITY}; got {bad[0]!r}")
        if self.kinds is not None:
            bad = [k for k in self.kinds if k not in COLUMN_KINDS]
            if bad:
                raise ValueError(f"FeatureSchema.kinds entries must be one of {COLUMN_KINDS}; got {bad[0]!r}")
            if self.raw_scale is None:  # bounds are raw values: an integer feature needs integer bounds
                for j in self.integer_features:
                    for side, b in (("lower", self.lower[j]), ("upper", self.upper[j])):
                        if np.isfinite(b) and b != round(b):
                            raise ValueError(
                                f"FeatureSchema.{side}: {self.kinds[j]} feature {self.names[j]!r} "
                                f"has a fractional bound {b!r}; expected an integer"
                            )

    @property
    def integer_features(self) -> tuple[int, ...]:
        """Columns on the integer grid of the raw scale (kinds integer and ordinal)."""
        return tuple(j for j, k in enumerate(self.kinds or ()) if k in GRID_KINDS)

    @classmethod
    def default(cls, d: int, names: Sequence[str] | None = None) -> "FeatureSchema":
        """All features mutable and unbounded."""
        names = tuple(names) if names is not None else tuple(f"x{j}" for j in range(d))
        return cls(names, ("both",) * d, (-np.inf,) * d, (np.inf,) * d, ())

    @property
    def n_features(self) -> int:
        """The number of features d."""
        return len(self.names)

    def constraints(self) -> Constraints:
        """The :class:`cfx.Constraints` implied by this schema."""
        grid = self.integer_features
        return Constraints(
            mutability=self.mutability,
            lower=self.lower,
            upper=self.upper,
            categorical_groups=self.categorical_groups,
            integer_features=grid or None,
            raw_offset=self.raw_offset if grid else None,
            raw_scale=self.raw_scale if grid else None,
        )

    def replace(self, **changes) -> "FeatureSchema":
        """A copy with ``changes`` (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class Standardizer:
    """z = (x - mean) / scale, fitted on a training split; one-hot columns are left as they are."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray, skip: Sequence[int] = ()) -> "Standardizer":
        """Column means μ and standard deviations σ of X (σ ≤ 1e-12 -> 1; ``skip`` columns: μ = 0, σ = 1)."""
        X = np.asarray(X, np.float64)
        mean, scale = X.mean(0), X.std(0)
        scale = np.where(scale > 1e-12, scale, 1.0)
        skip = list(skip)
        mean[skip], scale[skip] = 0.0, 1.0
        return cls(mean.astype(np.float32), scale.astype(np.float32))

    def transform(self, X: np.ndarray) -> np.ndarray:
        """z = (x − μ) / σ, in float32."""
        return ((np.asarray(X, np.float32) - self.mean) / self.scale).astype(np.float32)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """x = z·σ + μ, in float32."""
        return (np.asarray(Z, np.float32) * self.scale + self.mean).astype(np.float32)

    def transform_bounds(self, lower: Sequence[float], upper: Sequence[float]) -> tuple[tuple, tuple]:
        """Feature bounds (lower, upper) in the standardised space (±inf kept)."""
        # Same float32 arithmetic as `transform`, so a row sitting exactly on a data-range
        # bound maps exactly onto the transformed bound (float64 here was 1 ulp off at times,
        # which made the extreme rows violate their own bounds in check_factuals).
        lo = self.transform(np.asarray(lower, np.float32)[None])[0]
        hi = self.transform(np.asarray(upper, np.float32)[None])[0]
        return tuple(float(v) for v in lo), tuple(float(v) for v in hi)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Features ``X`` (float32, n x d), labels ``y`` (int32, n) and their :class:`FeatureSchema`.

    ``standardizer`` is set once the data has been standardised (see :meth:`standardize`),
    so counterfactuals can be mapped back with ``standardizer.inverse_transform``. Tabular
    data carries its fitted ``encoder`` (raw DataFrame <-> X, standardisation included; see
    :meth:`to_frame`). ``ids`` (n,) int64 names each row (default ``arange(n)``; the loaders:
    the row's position in the file) and follows the rows through ``subset``/``split``.
    """

    X: np.ndarray
    y: np.ndarray
    schema: FeatureSchema
    name: str = "dataset"
    standardizer: Standardizer | None = None
    encoder: TabularEncoder | None = None
    ids: np.ndarray | None = None

    def __post_init__(self):
        X = np.asarray(self.X, float_dtype())
        raw_y = np.asarray(self.y)
        integral = np.isfinite(raw_y) & (raw_y == np.round(raw_y)) if raw_y.dtype.kind == "f" else None
        if integral is not None and not integral.all():
            bad = raw_y[~integral]
            raise ValueError(
                f"Dataset.y must hold integer class labels; got {bad.size} non-integer values (first: {bad[0]!r})"
            )
        y = raw_y.astype(np.int32)
        if X.ndim != 2:
            raise ValueError(f"Dataset.X must be 2-D (n, d); got shape {X.shape}")
        if not np.isfinite(X).all():
            i, j = np.argwhere(~np.isfinite(X))[0]
            raise ValueError(
                f"Dataset.X contains NaN or inf ({int((~np.isfinite(X)).sum())} values; first at row "
                f"{int(i)}, feature {int(j)}): drop or impute them before building the data set"
            )
        if y.shape != (X.shape[0],):
            raise ValueError(f"Dataset.y must have shape ({X.shape[0]},); got {y.shape}")
        if X.shape[1] != self.schema.n_features:
            raise ValueError(f"Dataset.X has {X.shape[1]} features but the schema names {self.schema.n_features}")
        if self.encoder is not None and len(self.encoder.mean) != X.shape[1]:
            raise ValueError(f"Dataset.encoder encodes {len(self.encoder.mean)} columns; X has {X.shape[1]}")
        ids = None if self.ids is None else np.asarray(self.ids)
        if ids is None or ids.shape != (X.shape[0],):
            # no ids, or a replace() that changed the rows but kept the old ids: number the rows
            ids = np.arange(X.shape[0])
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "ids", ids.astype(np.int64) if ids.dtype.kind in "iub" else ids)

    def __len__(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        """The number of features d (columns of X)."""
        return self.X.shape[1]

    @property
    def n_classes(self) -> int:
        """max(y) + 1 (0 for an empty data set)."""
        return int(self.y.max()) + 1 if len(self.y) else 0

    def subset(self, idx) -> "Dataset":
        """The rows ``idx`` of X, y and ids (schema and encoder shared)."""
        return dataclasses.replace(self, X=self.X[idx], y=self.y[idx], ids=self.ids[idx])

    def to_frame(self) -> pd.DataFrame:
        """The rows in raw values (a DataFrame indexed by ``ids``); needs a tabular ``encoder``."""
        if self.encoder is None:
            raise ValueError(
                f"{self.name}: to_frame needs a tabular data set with a fitted encoder "
                "(cfx.data.load of a real tabular set, or cfx.data.from_frame)"
            )
        return self.encoder.decode(self.X, index=pd.Index(self.ids, name="id"))

    def split(self, test_size: float = 0.2, seed: int = 0, stratify: bool = True) -> tuple["Dataset", "Dataset"]:
        """Random (stratified) train/test split: returns ``(train, test)``."""
        if not 0.0 < test_size < 1.0:
            raise ValueError(f"test_size must be in (0, 1); got {test_size}")
        rng = np.random.default_rng(seed)
        n = len(self)
        if stratify:
            test_idx = []
            for c in np.unique(self.y):
                members = rng.permutation(np.flatnonzero(self.y == c))
                test_idx.append(members[: int(round(test_size * len(members)))])
            test_idx = np.concatenate(test_idx)
        else:
            test_idx = rng.permutation(n)[: int(round(test_size * n))]
        mask = np.zeros(n, bool)
        mask[test_idx] = True
        train_idx, test_idx = rng.permutation(np.flatnonzero(~mask)), rng.permutation(np.flatnonzero(mask))
        return self.subset(train_idx), self.subset(test_idx)

    def standardize(self, standardizer: Standardizer | None = None) -> "Dataset":
        """Standardise features (fit on *this* data unless a fitted standardizer is given).

        Fit on the training split and pass the result to the test split:
        ``train = train.standardize(); test = test.standardize(train.standardizer)``.
        One-hot columns are not rescaled; bounds in the schema are mapped to the new scale.
        """
        onehot = [i for g in self.schema.categorical_groups for i in g]
        std = standardizer or Standardizer.fit(self.X, skip=onehot)
        lower, upper = std.transform_bounds(self.schema.lower, self.schema.upper)
        d, old = self.n_features, self.schema
        offset = np.zeros(d, np.float32) if old.raw_offset is None else np.asarray(old.raw_offset, np.float32)
        scale = np.ones(d, np.float32) if old.raw_scale is None else np.asarray(old.raw_scale, np.float32)
        # raw = offset + scale·x and x = mean + sd·z: raw = (offset + scale·mean) + (scale·sd)·z
        schema = self.schema.replace(
            lower=lower,
            upper=upper,
            raw_offset=tuple(float(v) for v in offset + scale * std.mean),
            raw_scale=tuple(float(v) for v in scale * std.scale),
        )
        encoder = None if self.encoder is None else self.encoder.standardized(std.mean, std.scale)
        return dataclasses.replace(self, X=std.transform(self.X), schema=schema, standardizer=std, encoder=encoder)

    def balance(self, n: int | None = None, seed: int = 0) -> "Dataset":
        """Class-balanced subsample: equal rows per class (``n`` in total, or as many as the
        smallest class allows)."""
        rng = np.random.default_rng(seed)
        classes = np.unique(self.y)
        per_class = min(np.bincount(self.y)[classes])
        if n is not None:
            per_class = min(per_class, n // len(classes))
        idx = np.concatenate([rng.choice(np.flatnonzero(self.y == c), per_class, replace=False) for c in classes])
        return self.subset(rng.permutation(idx))

"""Dataset, FeatureSchema and the training-split standardiser."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from cfx.constraints import MUTABILITY, Constraints


@dataclasses.dataclass(frozen=True)
class FeatureSchema:
    """What each feature is and how it may change.

    Attributes:
      names: feature names, length d.
      mutability: ``"both" | "increase" | "decrease" | "none"`` per feature.
      lower, upper: per-feature domain bounds (``-inf``/``inf`` when unbounded).
      categorical_groups: tuples of column indices that form one-hot groups.
    """

    names: tuple[str, ...]
    mutability: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    categorical_groups: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self):
        d = len(self.names)
        for field in ("mutability", "lower", "upper"):
            if len(getattr(self, field)) != d:
                raise ValueError(f"FeatureSchema.{field} has {len(getattr(self, field))} entries; expected {d}")
        bad = [m for m in self.mutability if m not in MUTABILITY]
        if bad:
            raise ValueError(f"FeatureSchema.mutability entries must be one of {MUTABILITY}; got {bad[0]!r}")

    @classmethod
    def default(cls, d: int, names: Sequence[str] | None = None) -> "FeatureSchema":
        """All features mutable and unbounded."""
        names = tuple(names) if names is not None else tuple(f"x{j}" for j in range(d))
        return cls(names, ("both",) * d, (-np.inf,) * d, (np.inf,) * d, ())

    @property
    def n_features(self) -> int:
        return len(self.names)

    def constraints(self) -> Constraints:
        """The :class:`cfx.Constraints` implied by this schema."""
        return Constraints(
            mutability=self.mutability,
            lower=self.lower,
            upper=self.upper,
            categorical_groups=self.categorical_groups,
        )

    def replace(self, **changes) -> "FeatureSchema":
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class Standardizer:
    """z = (x - mean) / scale, fitted on a training split; one-hot columns are left as they are."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray, skip: Sequence[int] = ()) -> "Standardizer":
        X = np.asarray(X, np.float64)
        mean, scale = X.mean(0), X.std(0)
        scale = np.where(scale > 1e-12, scale, 1.0)
        skip = list(skip)
        mean[skip], scale[skip] = 0.0, 1.0
        return cls(mean.astype(np.float32), scale.astype(np.float32))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return ((np.asarray(X, np.float32) - self.mean) / self.scale).astype(np.float32)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        return (np.asarray(Z, np.float32) * self.scale + self.mean).astype(np.float32)

    def transform_bounds(self, lower: Sequence[float], upper: Sequence[float]) -> tuple[tuple, tuple]:
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
    so counterfactuals can be mapped back with ``standardizer.inverse_transform``.
    """

    X: np.ndarray
    y: np.ndarray
    schema: FeatureSchema
    name: str = "dataset"
    standardizer: Standardizer | None = None

    def __post_init__(self):
        X = np.asarray(self.X, np.float32)
        y = np.asarray(self.y).astype(np.int32)
        if X.ndim != 2:
            raise ValueError(f"Dataset.X must be 2-D (n, d); got shape {X.shape}")
        if y.shape != (X.shape[0],):
            raise ValueError(f"Dataset.y must have shape ({X.shape[0]},); got {y.shape}")
        if X.shape[1] != self.schema.n_features:
            raise ValueError(f"Dataset.X has {X.shape[1]} features but the schema names {self.schema.n_features}")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)

    def __len__(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def n_classes(self) -> int:
        return int(self.y.max()) + 1 if len(self.y) else 0

    def subset(self, idx) -> "Dataset":
        return dataclasses.replace(self, X=self.X[idx], y=self.y[idx])

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
        schema = self.schema.replace(lower=lower, upper=upper)
        return dataclasses.replace(self, X=std.transform(self.X), schema=schema, standardizer=std)

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

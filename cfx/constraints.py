"""Actionability constraints: mutability (incl. monotone), bounds, categorical one-hot groups,
integer grids (integer and ordinal features).

:class:`Constraints` is what a user writes (every argument optional, no feature count
needed). Before a search it is checked against the data and resolved into
:class:`ResolvedConstraints`, a PyTree of per-feature arrays whose projections run inside the
compiled search after every step, on every counterfactual.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from cfx._validate import float_dtype

MUTABILITY = ("both", "increase", "decrease", "none")
BOTH, INCREASE, DECREASE, NONE = range(4)


@dataclasses.dataclass(frozen=True)
class Constraints:
    """Per-feature actionability constraints.

    Args:
      mutability: one of ``"both" | "increase" | "decrease" | "none"`` per feature
        (``"none"`` = immutable; ``increase`` means x'_j >= x_j). Default: all ``"both"``.
      lower, upper: per-feature bounds (scalar or length d); x' is clamped to them.
      categorical_groups: lists of column indices forming one-hot groups; a group of one
        column is a binary feature rounded to {0, 1}. Groups are relaxed to [0, 1] during the
        search and snapped to a valid one-hot vector at the end.
      snap_each_step: snap the groups (and integer features) after every step too (a step
        then changes a category only when it moves the group's argmax).
      integer_features: column indices whose raw value is an integer (integer and ordinal
        features). Searched relaxed and, like the groups, returned on their grid: raw =
        raw_offset + raw_scale · x is rounded, then mapped back, x' = (round(raw) − offset) / scale.
      raw_offset, raw_scale: per feature (scalar or length d; default 0 and 1, i.e. x is raw),
        e.g. a standardiser's mean and scale (``FeatureSchema.constraints()`` sets them).

    Example::

        cfx.Constraints(mutability=["none", "both", "increase"], lower=-3.0, upper=3.0)
    """

    mutability: Sequence[str] | None = None
    lower: Sequence[float] | float | None = None
    upper: Sequence[float] | float | None = None
    categorical_groups: Sequence[Sequence[int]] | None = None
    snap_each_step: bool = False
    integer_features: Sequence[int] | None = None
    raw_offset: Sequence[float] | float | None = None
    raw_scale: Sequence[float] | float | None = None

    def __post_init__(self):
        if self.mutability is not None:
            if isinstance(self.mutability, str):
                raise TypeError("mutability must be a sequence with one entry per feature, not a string")
            if isinstance(self.mutability, Mapping):
                raise TypeError(
                    "mutability must be a sequence with one entry per feature, in column order; got a "
                    f"mapping {dict(self.mutability)!r}. Names belong to the data: "
                    "cfx.data.from_frame(..., mutability={name: code}) or cfx.explain(..., immutable=[names])"
                )
            bad = [m for m in self.mutability if m not in MUTABILITY]
            if bad:
                raise ValueError(f"mutability entries must be one of {MUTABILITY}; got {bad[0]!r}")
            object.__setattr__(self, "mutability", tuple(self.mutability))
        if self.categorical_groups is not None:
            groups = tuple(tuple(int(i) for i in g) for g in self.categorical_groups)
            if any(len(g) == 0 for g in groups):
                raise ValueError("categorical_groups must not contain an empty group")
            flat = [i for g in groups for i in g]
            if len(flat) != len(set(flat)):
                raise ValueError("categorical_groups overlap: a column may belong to one group only")
            object.__setattr__(self, "categorical_groups", groups)
        if self.integer_features is not None:
            grid = tuple(int(i) for i in self.integer_features)
            if len(grid) != len(set(grid)):
                raise ValueError("integer_features lists a column twice")
            in_groups = set(grid) & {i for g in (self.categorical_groups or ()) for i in g}
            if in_groups:
                raise ValueError(f"integer_features {sorted(in_groups)} are also in categorical_groups")
            object.__setattr__(self, "integer_features", grid)

    def resolve(self, n_features: int) -> "ResolvedConstraints":
        """Check lengths against ``n_features`` and build the array form used in the search."""
        d = n_features
        if self.mutability is None:
            codes = np.zeros(d, np.int32)
        else:
            if len(self.mutability) != d:
                raise ValueError(
                    f"constraints.mutability has {len(self.mutability)} entries; expected one per feature ({d})"
                )
            codes = np.array([MUTABILITY.index(m) for m in self.mutability], np.int32)
        lower = _bound(self.lower, d, -np.inf, "lower")
        upper = _bound(self.upper, d, np.inf, "upper")
        if np.any(lower > upper):
            j = int(np.argmax(lower > upper))
            raise ValueError(f"constraints bounds: lower > upper for feature {j} ({lower[j]} > {upper[j]})")
        groups = self.categorical_groups or ()
        for g in groups:
            if min(g) < 0 or max(g) >= d:
                raise ValueError(f"constraints.categorical_groups: index out of range [0, {d}) in group {list(g)}")
        grid = self.integer_features or ()
        if grid and (min(grid) < 0 or max(grid) >= d):
            raise ValueError(f"constraints.integer_features: index out of range [0, {d}) in {list(grid)}")
        offset, scale = None, None
        if grid:  # only then: without integer features the resolved tree (and program) is unchanged
            offset = _bound(self.raw_offset, d, 0.0, "raw_offset")
            scale = _bound(self.raw_scale, d, 1.0, "raw_scale")
            if not (np.all(np.isfinite(offset)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
                raise ValueError("constraints.raw_offset must be finite and raw_scale finite and > 0")
            offset, scale = jnp.asarray(offset, float_dtype()), jnp.asarray(scale, float_dtype())
        return ResolvedConstraints(
            mutability=jnp.asarray(codes),
            lower=jnp.asarray(lower, float_dtype()),
            upper=jnp.asarray(upper, float_dtype()),
            categorical_groups=groups,
            snap_each_step=bool(self.snap_each_step),
            integer_features=grid,
            raw_offset=offset,
            raw_scale=scale,
            acts=(bool(np.any(np.isfinite(lower)) or np.any(np.isfinite(upper))), bool(np.any(codes != 0))),
        )


def _bound(value, d: int, default: float, name: str) -> np.ndarray:
    if value is None:
        return np.full(d, default, float_dtype())
    arr = np.asarray(value, float_dtype())
    if np.any(np.isnan(arr)):
        raise ValueError(f"constraints.{name} contains NaN; use -inf/inf for an unbounded feature")
    if arr.ndim == 0:
        return np.full(d, float(arr), float_dtype())
    if arr.shape != (d,):
        raise ValueError(f"constraints.{name} has shape {arr.shape}; expected a scalar or ({d},)")
    return arr


@struct.dataclass
class ResolvedConstraints:
    """Array form of :class:`Constraints` for d features (PyTree; groups are static)."""

    mutability: jax.Array  # (d,) int codes: 0 both, 1 increase, 2 decrease, 3 none
    lower: jax.Array  # (d,)
    upper: jax.Array  # (d,)
    categorical_groups: tuple = struct.field(pytree_node=False, default=())
    snap_each_step: bool = struct.field(pytree_node=False, default=False)
    integer_features: tuple = struct.field(pytree_node=False, default=())
    raw_offset: jax.Array | None = None  # (d,) when integer_features, else None
    raw_scale: jax.Array | None = None
    # (any finite bound, any feature not free to move both ways), known when resolved: the
    # projection skips what cannot act, which an unconstrained search feels in every step
    acts: tuple = struct.field(pytree_node=False, default=(True, True))

    @property
    def immutable(self) -> jax.Array:
        """(d,) bool: the features whose mutability code is ``NONE``."""
        return self.mutability == NONE

    @property
    def snaps(self) -> bool:
        """Whether the returned point differs from the relaxed one (groups or integer grids)."""
        return bool(self.categorical_groups or self.integer_features)

    def project(self, x_cf: jax.Array, x: jax.Array, *, one_hot: bool = False) -> jax.Array:
        """Project counterfactuals onto the feasible set of factual ``x``.

        Bounds are clamped, categorical columns kept in [0, 1] (relaxed) or, with
        ``one_hot=True``, snapped to a valid one-hot vector (argmax; a single column is
        rounded) and integer features rounded on the raw scale (then clamped again, so a
        bound's float32 image holds); monotone features are kept on their side of x;
        immutable features are copied from x bit for bit. Shapes: x_cf (..., d), x
        broadcastable to it.
        """
        bounded, restricted = self.acts
        if not (bounded or restricted or self.categorical_groups or (one_hot and self.integer_features)):
            return x_cf
        x = jnp.broadcast_to(x, x_cf.shape)
        out = jnp.clip(x_cf, self.lower, self.upper) if bounded else x_cf
        for group in self.categorical_groups:
            idx = jnp.asarray(group)
            cols = jnp.clip(out[..., idx], 0.0, 1.0)
            if one_hot:
                if len(group) == 1:
                    cols = jnp.round(cols)
                else:
                    cols = jax.nn.one_hot(jnp.argmax(cols, axis=-1), len(group), dtype=out.dtype)
            out = out.at[..., idx].set(cols)
        if one_hot and self.integer_features:
            idx = jnp.asarray(self.integer_features)
            off, sc = self.raw_offset[idx], self.raw_scale[idx]
            # the encoder's own float32 arithmetic, z = (raw − mean) / scale: a grid value maps
            # to exactly the z its encoded row has (so a factual's own value is a fixed point)
            cols = (jnp.round(out[..., idx] * sc + off) - off) / sc
            cols = jnp.clip(cols, self.lower[idx], self.upper[idx])
            out = out.at[..., idx].set(cols)
        if not restricted:
            return out
        m = self.mutability
        out = jnp.where(m == INCREASE, jnp.maximum(out, x), out)
        out = jnp.where(m == DECREASE, jnp.minimum(out, x), out)
        return jnp.where(m == NONE, x, out)

    def mask_gradient(self, grad: jax.Array) -> jax.Array:
        """Zero the gradient of immutable features so optimiser state never moves them."""
        return jnp.where(self.immutable, 0.0, grad) if self.acts[1] else grad

"""Per-row regression targets: counterfactuals that bring each factual's prediction into its own
interval [lo_i, hi_i].

``Regressor.within(lo, hi)`` is one binary classifier for one interval (lo, hi are leaves of its
params). :func:`generate_within` gives every factual its own: it vmaps the pure search core
(:func:`cfx.search.search`) over the factuals, each row searching the classifier
``within(lo_i, hi_i)`` — one compiled program for all rows, the same per-row randomness as
:func:`cfx.generate` (row i's keys come from ``key`` and its index i). Validity is membership,
as for a scalar interval: p(inside | x') = σ(min(ŷ − lo_i, hi_i − ŷ)/s) >= τ.
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from cfx.constraints import Constraints
from cfx.search import CounterfactualResult, search

__all__ = ["generate_within", "interval_bounds"]


def interval_bounds(lo, hi, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``lo``, ``hi`` as (n,) float arrays: a scalar, None (unbounded: ∓inf) or one value per row.
    Raises ValueError naming the argument and the first bad row (lo > hi, NaN, both sides open)."""
    out = []
    for name, v, fill in (("lo", lo, -np.inf), ("hi", hi, np.inf)):
        a = np.asarray(fill if v is None else v, dtype=object)
        a = (
            np.full(n, fill if a.item() is None else float(a.item()))
            if a.ndim == 0
            else np.array([fill if e is None else float(e) for e in a.ravel()], np.float64).reshape(a.shape)
        )
        if a.shape != (n,):
            raise ValueError(f"{name} must be a number, None or one value per factual ({n},); got shape {a.shape}")
        if np.isnan(a).any():
            raise ValueError(
                f"{name} must not be NaN (None for an open side); row {int(np.flatnonzero(np.isnan(a))[0])}"
            )
        out.append(a)
    lo_a, hi_a = out
    bad = np.flatnonzero(lo_a > hi_a)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"lo must be <= hi in every row; row {i} has lo={float(lo_a[i])!r} > hi={float(hi_a[i])!r}")
    both = np.flatnonzero(np.isinf(lo_a) & np.isinf(hi_a))
    if both.size:
        raise ValueError(f"lo and hi: row {int(both[0])} has no finite bound (the whole real line is no target)")
    return lo_a, hi_a


def generate_within(
    generator,
    regressor,
    x,
    lo=None,
    hi=None,
    *,
    key: jax.Array,
    constraints=None,
    max_steps: int = 100,
    scale: float | None = None,
) -> CounterfactualResult:
    """Counterfactuals x' with lo_i <= ŷ(x'_i) <= hi_i, one interval per factual.

    Args:
      generator: a generator that needs no class probabilities (as for ``Regressor.within``:
        ECCCo/ECCo, Probe and CLUE are refused), fitted if it summarises data (fit it with
        ``regressor.within(...)`` of any interval: the fitted summaries do not depend on it).
      regressor: a :class:`cfx.models.Regressor`.
      x: (n, d) factuals.
      lo, hi: (n,) per-row bounds, scalars, or None (open side); lo_i <= hi_i, one finite.
      key, constraints, max_steps: as :func:`cfx.generate`. ``scale``: as ``Regressor.within``.

    Returns a :class:`CounterfactualResult` (n, K, d) with target 1 ("inside") per row; its
    ``runtime_s`` is the call's wall time, compilation included on a new shape.

    Example::

        res = cfx.generate_within(cfx.generators.Wachter.from_data(train), reg, x,
                                  lo=reg.predict(x) + 1e4, hi=reg.predict(x) + 3e4, key=jax.random.key(0))
    """
    if not (hasattr(regressor, "within") and hasattr(regressor, "predict_fn")):
        raise TypeError(f"regressor must be a cfx.models.Regressor; got {type(regressor).__name__}")
    reason = getattr(type(generator), "regression_refusal", None)
    if reason:
        raise ValueError(f"generator {type(generator).__name__} cannot search for a regression target: {reason}")
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[1] != regressor.n_features:
        raise ValueError(f"x must have shape (n, {regressor.n_features}); got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or inf values")
    n, d = x.shape
    lo_a, hi_a = interval_bounds(lo, hi, n)
    template = regressor.within(lo_a[0], hi_a[0], scale=scale)  # checks scale; lo/hi replaced per row
    K = int(generator.num_counterfactuals)
    generator.validate(K, d, 2)
    resolved = (constraints or Constraints()).resolve(d)
    start = time.perf_counter()
    res = _run(
        generator,
        template,
        jnp.asarray(x),
        jnp.asarray(lo_a, jnp.float32),
        jnp.asarray(hi_a, jnp.float32),
        key,
        resolved,
        int(max_steps),
    )
    res = jax.block_until_ready(res)
    return res.replace(runtime_s=time.perf_counter() - start)


@functools.partial(jax.jit, static_argnames="max_steps")
def _run(generator, template, x, lo, hi, key, constraints, max_steps):
    def one(x_i, lo_i, hi_i, row):
        clf = template.replace({**template.params, "lo": lo_i, "hi": hi_i})
        return search(
            generator,
            clf,
            x_i[None],
            jnp.ones(1, jnp.int32),
            key=key,
            constraints=constraints,
            max_steps=max_steps,
            rows=row[None],
        )

    res = jax.vmap(one)(x, lo, hi, jnp.arange(x.shape[0]))
    squeeze = lambda a: a[:, 0] if getattr(a, "ndim", 0) >= 2 else a  # noqa: E731  (n, 1, ...) -> (n, ...)
    return res.replace(
        **{
            f: jax.tree_util.tree_map(squeeze, getattr(res, f))
            for f in (
                "factuals",
                "target",
                "counterfactuals",
                "outcome",
                "steps",
                "target_probs",
                "terms",
                "path",
                "track",
            )
        },
        threshold=res.threshold[0],
    )

"""The reference evaluation of CounterfactualTraining.jl (SaTML 2026): rounds over an ECCo pool.

What ``evaluation.protocol: pool`` of the ``ct`` kind runs (``preset: ct-2026``), read from the
paper's experiment code (``paper/experiments/CTExperiments``, v0.1.3) and its evaluation configs:

- ``n_individuals`` (factual class c_i, target t_i ≠ c_i) pairs are drawn once, at random, and shared
  by every round and every model (CE.jl's ``benchmark``: ``factual = rand(y_levels, n_individuals)``
  and the targets before its loop over runs, :func:`draw_labels`); J rounds ("runs"): in round j each
  model draws, for individual i, one test row *that it predicts as c_i*, with replacement (−1 where
  it predicts no row of c_i: that individual contributes nothing). A round thus mixes both
  directions in fixed proportions, and rounds differ only by the rows drawn. (``draw_rounds`` is
  the earlier reading, one (factual, target) pair per round, kept for comparison: its per-round
  values then also vary with the direction drawn, which widens the spread of the ratios);
- every individual is searched once per energy weight λ_egy of the pool (default
  {0.1, 0.5, 1, 5, 10}) with ECCo at λ_cost = 0, SGD η (the preset: 0.1), ≤ T = 50 steps, stop at
  p(t|x') >= τ_eval (0.95 on synthetic data and Adult, 0.5 on the other tabular sets), the
  polynomial energy schedule for T (:func:`cfx.generators.eccco.polynomial_schedule`), ridge 1e-3,
  the mode's mutability and the constraints passed (the preset: the training's domain box, which
  CTExperiments' ``apply_inferred_domain!`` stores with the data for training and evaluation);
- valid: p(t|x') >= 0.5 (CE.jl's ``validity``); IP and IP* are means over valid counterfactuals;
- IP per counterfactual: the mean L1 distance to ≤ ``ip_samples`` (1000) *test* rows of class t;
- IP* (``divergence``), Gaussian kernel with length-scale ℓ (5.0 in the code), unbiased MMD²
  (:func:`cfx.evaluation.mmd.mmd2`, CE.jl's ``kernelsum``), clamped at 0 as the reference's
  tables do. ``"pooled"`` (the reference: CE.jl's ``compute_divergence`` on the
  ``counterfactual-training`` branch groups by (λ, model, target, factual) over *all* rounds):
  per λ and (factual class, target class) one MMD² between ≤ ``ip_star_size`` (100) of the group's
  counterfactuals of every round, valid or not, drawn without replacement, and as many test rows of
  class t; every counterfactual of the group carries that value, so a round's value is the mean of
  its valid counterfactuals' group values (rounds differ only by which are valid). ``"round"`` (an
  earlier reading): per round and target class the MMD² of ≤ 100 of the round's valid
  counterfactuals, the round's value the mean over the target classes;
- each λ_egy draws its own pairs and rows when ``factual``/``target`` have one row per λ (the reference
  runs one ``benchmark`` per λ, one after the other, its random stream running on), else one draw
  serves every λ;
- a model's value in round j: the mean over λ of the per-(j, λ) means (:func:`round_means`);
  the % reduction of CT vs the baseline is 100·(1 − mean_j(CT_j / BL_j)), its spread the
  standard deviation of the per-round ratios, and it is significant (*) when the 99 % quantile
  interval of the per-round differences BL_j − CT_j excludes 0 (:func:`pooled_reduction`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from cfx.classifier import Classifier
from cfx.evaluation.mmd import mmd2

DEFAULT_ENERGIES = (0.1, 0.5, 1.0, 5.0, 10.0)


@dataclasses.dataclass(frozen=True)
class PoolSpec:
    """The evaluation's settings (see the module docstring for each)."""

    energies: tuple = DEFAULT_ENERGIES
    rounds: int = 100
    n_individuals: int = 250
    max_steps: int = 50
    threshold: float = 0.95
    learning_rate: float = 0.25
    cost: float = 0.0
    ridge: float = 1e-3
    ip_samples: int = 1000
    ip_star_size: int = 100
    length_scale: float = 5.0
    length_scale_alt: float | None = None  # also IP* with this ℓ (``ip_star_alt``)
    valid_probability: float = 0.5
    pairs: str = "individual"  # (factual, target) per individual, fixed over rounds; "round": one pair per round
    divergence: str = "round"  # IP* per round ("round") or per (factual, target) group over all rounds ("pooled")

    def __post_init__(self):
        if self.pairs not in ("individual", "round"):
            raise ValueError(f"PoolSpec.pairs must be 'individual' or 'round'; got {self.pairs!r}")
        if self.divergence not in ("round", "pooled"):
            raise ValueError(f"PoolSpec.divergence must be 'round' or 'pooled'; got {self.divergence!r}")


def draw_labels(n_classes: int, n_individuals: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(factual class, target class) per individual, uniform over ordered pairs of distinct classes;
    drawn once and shared by every round (CE.jl's ``benchmark``)."""
    return draw_rounds(n_classes, n_individuals, seed)


def draw_rounds(n_classes: int, rounds: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(factual class, target class) per round, uniform over ordered pairs of distinct classes."""
    rng = np.random.default_rng(seed)
    factual = rng.integers(0, n_classes, rounds)
    target = (factual + 1 + rng.integers(0, n_classes - 1, rounds)) % n_classes
    return factual.astype(np.int32), target.astype(np.int32)


def draw_individuals(pred: np.ndarray, factual: np.ndarray, n_individuals: int | None, seed: int) -> np.ndarray:
    """(J, n) test-row indices, each predicted as its factual class, drawn with replacement (−1
    where the model predicts no row of that class). ``factual``: (J, n) classes per round and
    individual, or (J,) one class per round with ``n_individuals`` rows each."""
    rng = np.random.default_rng(seed)
    factual = np.asarray(factual)
    if factual.ndim == 1:
        factual = np.repeat(factual[:, None], n_individuals, axis=1)
    out = np.full(factual.shape, -1, np.int64)
    for c in np.unique(factual):
        rows, at = np.flatnonzero(pred == c), factual == c
        if len(rows):
            out[at] = rows[rng.integers(0, len(rows), int(at.sum()))]
    return out


@jax.jit
def _ip_rows(cf, bank, mask):
    """Mean L1 distance of each row of cf (m, d) to the masked bank (S, d)."""
    dist = jax.lax.map(lambda q: jnp.sum(jnp.abs(bank - q), axis=-1), cf, batch_size=256)
    return jnp.sum(jnp.where(mask, dist, 0.0), axis=-1) / jnp.maximum(jnp.sum(mask), 1)


@jax.jit
def _mmd_rounds(a, wa, b, wb, ls):
    return jax.vmap(lambda a, wa, b, wb: mmd2(a, b, wa, wb, ls))(a, wa, b, wb)


def evaluate_pool(
    classifier: Classifier,
    test,
    generator,
    *,
    spec: PoolSpec,
    factual: np.ndarray,
    target: np.ndarray,
    constraints,
    key,
    seed: int = 0,
) -> dict:
    """One model's pooled evaluation (module docstring). ``generator`` is the ECCo whose
    ``energy`` is replaced by each weight of the pool; ``factual``/``target``: the classes of each
    individual ((n,), :func:`draw_labels`, the same in every round; ``spec.pairs == "individual"``)
    or of each round ((J,), :func:`draw_rounds`; ``"round"``), shared by the models compared. With
    one row per energy weight ((λ, n) or (λ, J)) every λ has its own classes and its own rows in
    each round (the reference runs one ``benchmark`` per λ, its random stream running on), so a
    round's mean over λ averages λ independent draws; (n,) shares one draw across the λ.
    Returns arrays with axes (λ, round, individual): ``valid``, ``ip``, ``cost`` (L1 to the factual), ``converged``,
    ``steps``; (λ, round): ``ip_star`` (and ``ip_star_alt`` with ``length_scale_alt``, else NaN);
    and ``rows`` (round, individual) test indices ((λ, round, individual) with per-λ draws)."""
    from cfx.search import generate  # the host wrapper: checks, compile cache

    X, y = np.asarray(test.X, np.float32), np.asarray(test.y)
    pred = np.asarray(classifier.predict(X))
    factual, target = np.asarray(factual), np.asarray(target)
    E = len(spec.energies)
    per_energy = factual.ndim == 2  # each λ its own classes and rows (one benchmark call per λ)
    if factual.shape != target.shape or factual.ndim not in (1, 2) or (per_energy and len(factual) != E):
        raise ValueError(
            "factual and target must be two arrays of one shape, (n,) or (λ, n) with one row per energy weight; "
            f"got {factual.shape}, {target.shape} for {E} energies"
        )
    per_individual = spec.pairs == "individual"
    want = spec.n_individuals if per_individual else spec.rounds
    if factual.shape[-1] != want:
        raise ValueError(f"factual: {factual.shape[-1]} classes for pairs={spec.pairs!r}; expected {want}")
    J = spec.rounds if per_individual else factual.shape[-1]
    n = factual.shape[-1] if per_individual else spec.n_individuals

    def draws(fac1, tgt1, seed_):
        """(classes (J, n), targets (J, n), rows (J, n)) of one draw: each individual's row per round."""
        grid = lambda a: np.broadcast_to(a[None, :], (J, n)) if per_individual else np.repeat(a[:, None], n, 1)
        fac2, tgt2 = grid(fac1), grid(tgt1)
        return fac2, np.ascontiguousarray(tgt2).astype(np.int32), draw_individuals(pred, fac2, None, seed_)

    shared = None if per_energy else draws(factual, target, seed)
    rng = np.random.default_rng(seed + 1)
    # per class: ≤ ip_samples test rows of that class for IP, ≤ ip_star_size for IP* (seeded)
    banks = {}
    for c in np.unique(target):
        idx = np.flatnonzero(y == c)
        banks[int(c)] = (X[rng.permutation(idx)[: spec.ip_samples]], X[rng.permutation(idx)[: spec.ip_star_size]])
    out = {k: np.full((E, J, n), np.nan, np.float32) for k in ("ip", "cost")}
    out.update({k: np.zeros((E, J, n), bool) for k in ("valid", "converged")})
    out["steps"] = np.zeros((E, J, n), np.int32)
    out["ip_star"] = np.full((E, J), np.nan, np.float32)
    out["ip_star_alt"] = np.full((E, J), np.nan, np.float32)
    all_rows = np.full((E, J, n), -1, np.int64)
    size, d = spec.ip_star_size, X.shape[1]
    for e, lam in enumerate(spec.energies):
        fac, tgt2, rows = shared if shared is not None else draws(factual[e], target[e], seed + 1009 * (e + 1))
        all_rows[e] = rows
        has = rows >= 0
        x = X[np.where(has, rows, 0).reshape(-1)]
        tgt = tgt2.reshape(-1)
        res = generate(
            generator.replace(energy=float(lam)),
            classifier,
            x,
            tgt,
            key=jax.random.fold_in(key, e),
            constraints=constraints,
            max_steps=spec.max_steps,
        )
        cf = np.asarray(res.counterfactuals)[:, 0]
        p = np.asarray(res.target_probs)[:, 0]
        valid = (p >= spec.valid_probability) & has.reshape(-1)
        out["valid"][e] = valid.reshape(J, n)
        out["converged"][e] = (np.asarray(res.outcome)[:, 0] == 0).reshape(J, n) & has
        out["steps"][e] = np.asarray(res.steps)[:, 0].reshape(J, n)
        out["cost"][e] = np.where(valid, np.abs(cf - x).sum(1), np.nan).reshape(J, n)
        ip = np.zeros(len(cf), np.float32)
        for c, (bank, _) in banks.items():
            sel = tgt == c
            if sel.any():
                ip[sel] = np.asarray(_ip_rows(jnp.asarray(cf[sel]), jnp.asarray(bank), jnp.ones(len(bank), bool)))
        out["ip"][e] = np.where(valid, ip, np.nan).reshape(J, n)
        # IP*: per round and target class, ≤ size valid counterfactuals (the first ones: the draw is
        # already random) against ≤ size test rows of that class; the round's value: mean over classes
        cfr, vr, tr = cf.reshape(J, n, d), valid.reshape(J, n), tgt2
        for name, ls in (("ip_star", spec.length_scale), ("ip_star_alt", spec.length_scale_alt)):
            if ls is None:
                continue
            if spec.divergence == "pooled":
                out[name][e] = _pooled_divergence(
                    cf, valid, has.reshape(-1), fac.reshape(-1), tgt, X, y, J, n, size, ls, seed=seed + 7 + e
                )
                continue
            per_class = []
            for c, (_, samples) in banks.items():
                a, wa = np.zeros((J, size, d), np.float32), np.zeros((J, size), np.float32)
                b, wb = np.zeros((J, size, d), np.float32), np.zeros((J, size), np.float32)
                for j in range(J):
                    keep = np.flatnonzero(vr[j] & (tr[j] == c))[:size]
                    a[j, : len(keep)], wa[j, : len(keep)] = cfr[j, keep], 1.0
                b[:, : len(samples)], wb[:, : len(samples)] = samples, 1.0
                mmd = np.asarray(_mmd_rounds(a, wa, b, wb, jnp.float32(ls)))
                per_class.append(np.where(wa.sum(1) >= 2, np.maximum(mmd, 0.0), np.nan))
            out[name][e] = _nanmean(np.stack(per_class), axis=0)
    out["rows"] = all_rows if per_energy else all_rows[0]
    return out


def _pooled_divergence(cf, valid, has, fac, tgt, X, y, J, n, size, ls, seed) -> np.ndarray:
    """(J,) IP* of one λ, grouped as CE.jl's ``compute_divergence``: one MMD² per (factual class,
    target class) over the counterfactuals of every round (valid or not; ≤ ``size`` drawn without
    replacement) against ≤ ``size`` test rows of the target class; a round's value is the mean of
    its valid counterfactuals' group values (NaN without any)."""
    rng = np.random.default_rng(seed)
    d = cf.shape[1]
    value = np.full(len(cf), np.nan, np.float32)
    for f, t in sorted({(int(a), int(b)) for a, b in zip(fac[has], tgt[has])}):
        members = np.flatnonzero(has & (fac == f) & (tgt == t))
        pick = members if len(members) <= size else rng.choice(members, size, replace=False)
        rows = np.flatnonzero(y == t)
        ref = rows if len(rows) <= size else rng.choice(rows, size, replace=False)
        a, wa = np.zeros((1, size, d), np.float32), np.zeros((1, size), np.float32)
        b, wb = np.zeros((1, size, d), np.float32), np.zeros((1, size), np.float32)
        a[0, : len(pick)], wa[0, : len(pick)] = cf[pick], 1.0
        b[0, : len(ref)], wb[0, : len(ref)] = X[ref], 1.0
        if len(pick) >= 2 and len(ref) >= 2:
            value[members] = max(float(np.asarray(_mmd_rounds(a, wa, b, wb, jnp.float32(ls)))[0]), 0.0)
    per_row = np.where(valid, value, np.nan).reshape(J, n)
    return _nanmean(per_row, axis=1)


def round_means(values: np.ndarray) -> np.ndarray:
    """Per-round value: the mean over λ of the per-(λ, round) means of ``values`` ((λ, J, n) with
    NaN for invalid counterfactuals, or (λ, J)). NaN for a round with no value at all."""
    v = np.asarray(values, np.float64)
    per = v if v.ndim == 2 else _nanmean(v, axis=2)
    return _nanmean(per, axis=0)


def _nanmean(a, axis):
    n = np.sum(np.isfinite(a), axis=axis)
    s = np.nansum(a, axis=axis)
    return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def pooled_reduction(base_rounds: np.ndarray, treated_rounds: np.ndarray, level: float = 0.99) -> dict:
    """The paper's % reduction from per-round values: 100·(1 − mean_j(CT_j / BL_j)), ``se`` =
    100·sd_j(CT_j / BL_j), ``low``/``high`` the ``level`` quantile interval of the per-round
    reductions, and ``significant`` when that interval of the differences BL_j − CT_j excludes 0."""
    b, t = np.asarray(base_rounds, np.float64), np.asarray(treated_rounds, np.float64)
    ok = np.isfinite(b) & np.isfinite(t) & (b > 0)
    if ok.sum() < 2:
        return {
            "reduction": float("nan"),
            "se": float("nan"),
            "low": float("nan"),
            "high": float("nan"),
            "significant": False,
            "rounds": int(ok.sum()),
        }
    ratio = t[ok] / b[ok]
    q = [50 * (1 - level), 100 - 50 * (1 - level)]
    lo_d, hi_d = np.percentile(b[ok] - t[ok], q)
    lo, hi = np.percentile(100 * (1 - ratio), q)
    return {
        "reduction": float(100 * (1 - ratio.mean())),
        "se": float(100 * ratio.std(ddof=1)),
        "low": float(lo),
        "high": float(hi),
        "significant": bool(lo_d > 0 or hi_d < 0),
        "rounds": int(ok.sum()),
    }

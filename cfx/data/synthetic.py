"""Synthetic 2-D data sets (numpy, seedable, any ``n``).

Every maker (a function in :data:`MAKERS`) takes ``n`` (total rows, default 1000) and ``seed`` and returns a
:class:`~cfx.data.Dataset` with ``X`` float32 (n, 2) and ``y`` int32 labels. Classes get
``n // k`` rows each (the first ``n % k`` classes one more), and rows are shuffled, so the
same ``(n, seed)`` always gives the same data and no class is ever empty.

Scale: every set lives at unit scale (coordinates roughly in [-2, 2]), which is the scale
the SPEC's dynamics metrics assume (Gaussian MMD kernel with length-scale 0.5, SPEC §6) and
at which step sizes like 0.1 in counterfactual search make sense. For that reason
:func:`cfx.data.train_test` leaves them in raw coordinates (standardising would distort the
geometry, e.g. turn circles into ellipses). The exception is :func:`cats_dogs`, whose
features carry physical units (centimetres) and *are* standardised like real tabular data.

Bounds: the purely geometric sets are unbounded (``-inf``/``inf``; there is no natural
domain edge and a data-range box would make points near the hull infeasible targets).
``cats_dogs`` has non-negative lengths (lower bound 0, no upper bound).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from cfx.data.dataset import Dataset, FeatureSchema

DEFAULT_N = 1000


def _check(n: int, k: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int (number of rows); got {type(n).__name__}")
    if n < k:
        raise ValueError(f"n must be at least {k} (one row per class); got {n}")
    return int(n)


def _class_sizes(n: int, k: int) -> np.ndarray:
    """Rows per class: n // k each, the first n % k classes get one more."""
    sizes = np.full(k, n // k)
    sizes[: n % k] += 1
    return sizes


def _finish(parts: Sequence[np.ndarray], rng: np.random.Generator, name: str, schema: FeatureSchema) -> Dataset:
    """Stack per-class blocks, label them 0..k-1 and shuffle rows."""
    X = np.concatenate(parts).astype(np.float32)
    y = np.concatenate([np.full(len(p), c, np.int32) for c, p in enumerate(parts)])
    order = rng.permutation(len(y))
    return Dataset(X[order], y[order], schema, name=name)


def _unbounded(names=("x1", "x2")) -> FeatureSchema:
    return FeatureSchema.default(len(names), names)


def blobs(
    n: int = DEFAULT_N,
    seed: int = 0,
    *,
    centers: Sequence[Sequence[float]],
    std: float | Sequence[float],
    name: str = "blobs",
) -> Dataset:
    """Isotropic Gaussian blobs: class c ~ N(centers[c], std_c^2 I), c = 0..k-1."""
    centers = np.asarray(centers, np.float64)
    if centers.ndim != 2:
        raise ValueError(f"centers must be a (k, d) array of class centres; got shape {centers.shape}")
    k, d = centers.shape
    stds = np.broadcast_to(np.asarray(std, np.float64), (k,))
    if np.any(stds < 0):
        raise ValueError(f"std must be non-negative; got {std}")
    n = _check(n, k)
    rng = np.random.default_rng(seed)
    parts = [centers[c] + stds[c] * rng.standard_normal((m, d)) for c, m in enumerate(_class_sizes(n, k))]
    names = ("x1", "x2") if d == 2 else tuple(f"x{j + 1}" for j in range(d))
    return _finish(parts, rng, name, _unbounded(names))


def _two_centres(distance: float, centers, center_box, seed: int) -> np.ndarray:
    """The two class centres: ``centers`` if given, else drawn U(lo, hi)² per class from
    ``center_box = (lo, hi)`` (scikit-learn ``make_blobs``' rule; the draw is seeded by
    ``seed + 1`` so it does not shift the points' stream), else (-a, -a) and (a, a)."""
    if centers is not None and center_box is not None:
        raise ValueError("give centers or center_box, not both")
    if centers is not None:
        centers = np.asarray(centers, np.float64)
        if centers.shape != (2, 2):
            raise ValueError(f"centers must be two 2-D points, shape (2, 2); got shape {centers.shape}")
        return centers
    if center_box is not None:
        lo, hi = (float(v) for v in center_box)
        if not lo < hi:
            raise ValueError(f"center_box must be (lo, hi) with lo < hi; got {tuple(center_box)}")
        return np.random.default_rng(seed + 1).uniform(lo, hi, (2, 2))
    return np.array([[-distance, -distance], [distance, distance]])


def linearly_separable(
    n: int = DEFAULT_N,
    seed: int = 0,
    *,
    std: float = 0.1,
    distance: float = 1.0,
    centers: Sequence[Sequence[float]] | None = None,
    center_box: Sequence[float] | None = None,
) -> Dataset:
    """Two tight Gaussian blobs (SPEC §6: std 0.1), class 0 at (-a, -a), class 1 at (a, a), a = ``distance``.

    With a = 1 the centres are 2·sqrt(2) ≈ 2.83 apart, i.e. ~28 standard deviations: the
    classes are separable by a wide margin, yet close enough that a counterfactual search
    with step size 0.1 crosses the boundary in a few dozen steps. ``centers`` places the two
    centres explicitly; ``center_box=(lo, hi)`` draws them uniformly in that box, seeded, as
    the reference experiments do (``make_blobs(centers=2, center_box=(lo, hi))``).
    """
    return blobs(n, seed, centers=_two_centres(distance, centers, center_box, seed), std=std, name="linearly_separable")


def overlapping(
    n: int = DEFAULT_N,
    seed: int = 0,
    *,
    std: float = 0.5,
    distance: float = 0.5,
    centers: Sequence[Sequence[float]] | None = None,
    center_box: Sequence[float] | None = None,
) -> Dataset:
    """Two overlapping Gaussian blobs (SPEC §6: std 0.5) at (-a, -a) and (a, a), a = ``distance``.

    With a = 0.5 the centres are sqrt(2) ≈ 1.41 apart; along the diagonal each class
    crosses the Bayes boundary with probability Φ(-sqrt(2)·a/std) = Φ(-1.41) ≈ 7.9 %, so the
    classes genuinely overlap and F1 changes under recourse dynamics are measurable.
    ``centers`` / ``center_box`` as in :func:`linearly_separable`.
    """
    return blobs(n, seed, centers=_two_centres(distance, centers, center_box, seed), std=std, name="overlapping")


def moons(n: int = DEFAULT_N, seed: int = 0, *, noise: float = 0.1, yshift: float = 0.5) -> Dataset:
    """Two interleaving half circles (scikit-learn ``make_moons`` geometry).

    Class 0: (cos t, sin t); class 1: (1 - cos t, yshift - sin t), t ~ U[0, π] per point,
    plus N(0, noise²) on each coordinate. ``yshift`` 0.5 is scikit-learn's; MLJBase's
    ``make_moons`` (TaijaData, the Julia references) uses 0.3.
    """
    n = _check(n, 2)
    rng = np.random.default_rng(seed)
    n0, n1 = _class_sizes(n, 2)
    t0, t1 = rng.uniform(0.0, np.pi, n0), rng.uniform(0.0, np.pi, n1)
    outer = np.stack([np.cos(t0), np.sin(t0)], 1)
    inner = np.stack([1.0 - np.cos(t1), yshift - np.sin(t1)], 1)
    parts = [p + noise * rng.standard_normal(p.shape) for p in (outer, inner)]
    return _finish(parts, rng, "moons", _unbounded())


def circles(n: int = DEFAULT_N, seed: int = 0, *, noise: float = 0.15, factor: float = 0.01) -> Dataset:
    """Outer ring (class 0, radius 1) around an inner ring (class 1, radius ``factor``),
    scikit-learn ``make_circles`` geometry, plus N(0, noise²) on each coordinate.

    SPEC §6 uses noise 0.15 and factor 0.01, so the inner "ring" is in effect a Gaussian
    blob of std 0.15 at the origin (radius mostly < 0.45) inside a ring of radius 1 ± 0.15
    (radius mostly > 0.6): not linearly separable, but an MLP separates it almost
    perfectly (held-out accuracy ≈ 0.99–1.0 for a small MLP). A linear model cannot (≈ 0.5), as intended.
    """
    if not 0.0 <= factor < 1.0:
        raise ValueError(f"factor must be in [0, 1) (inner radius relative to the outer); got {factor}")
    n = _check(n, 2)
    rng = np.random.default_rng(seed)
    n0, n1 = _class_sizes(n, 2)
    t0, t1 = rng.uniform(0.0, 2 * np.pi, n0), rng.uniform(0.0, 2 * np.pi, n1)
    outer = np.stack([np.cos(t0), np.sin(t0)], 1)
    inner = factor * np.stack([np.cos(t1), np.sin(t1)], 1)
    parts = [p + noise * rng.standard_normal(p.shape) for p in (outer, inner)]
    return _finish(parts, rng, "circles", _unbounded())


def multiclass(n: int = DEFAULT_N, seed: int = 0, *, std: float = 0.35) -> Dataset:
    """Four Gaussian blobs in 2-D, classes 0..3 at (-1, -1), (1, -1), (-1, 1), (1, 1).

    Neighbouring centres are 2 apart (≈ 5.7 std), so each class has two neighbours it
    touches only in its tails: a clean multiclass problem with non-trivial boundaries.
    """
    centers = [[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]]
    return blobs(n, seed, centers=centers, std=std, name="multiclass")


# (mean height, mean tail length) in cm and per-feature standard deviations.
_CATS = ((25.0, 28.0), (3.0, 3.5))
_DOGS = ((45.0, 20.0), (8.0, 6.0))


def cats_dogs(n: int = DEFAULT_N, seed: int = 0) -> Dataset:
    """Cats (class 0) and dogs (class 1) described by ``height`` and ``tail_length`` in cm.

    Cats: height ~ N(25, 3²), tail ~ N(28, 3.5²); dogs: height ~ N(45, 8²), tail ~ N(20, 6²).
    Dogs are taller with shorter tails on average, the classes overlap a little, and a
    counterfactual mostly has to change height. Lengths are clipped at 0.5 cm so every value
    is positive; the schema bounds are [0, inf). Unlike the geometric sets this one carries
    physical units, so :func:`cfx.data.train_test` standardises it.
    """
    n = _check(n, 2)
    rng = np.random.default_rng(seed)
    parts = []
    for (mean, sd), m in zip((_CATS, _DOGS), _class_sizes(n, 2)):
        parts.append(np.maximum(np.asarray(mean) + np.asarray(sd) * rng.standard_normal((m, 2)), 0.5))
    schema = FeatureSchema(
        names=("height", "tail_length"),
        mutability=("both", "both"),
        lower=(0.0, 0.0),
        upper=(np.inf, np.inf),
    )
    return _finish(parts, rng, "cats_dogs", schema)


def scm_chain(n: int = DEFAULT_N, seed: int = 0, *, weight: float = 1.0, noise: float = 0.5) -> Dataset:
    """Rows drawn from a known linear additive-noise SCM x1 → x2 (for causal recourse, MINT):

        x1 = u1,    x2 = weight · x1 + u2,    u1 ~ N(0, 1),  u2 ~ N(0, noise²);

    label 1 for the half of the rows with the larger x1 + x2 + ε, ε ~ N(0, 0.25²) (so each class
    has n // 2 rows). Unbounded, unit scale. ``cfx.causal.fit_linear_scm(X, [[], [0]])``
    recovers x2's equation; an action on x1 moves x2 by ``weight`` times as much.
    """
    n = _check(n, 2)
    rng = np.random.default_rng(seed)
    x1 = rng.standard_normal(n)
    x2 = weight * x1 + noise * rng.standard_normal(n)
    order = np.argsort(x1 + x2 + 0.25 * rng.standard_normal(n), kind="stable")
    X = np.stack([x1, x2], axis=1)
    k0 = _class_sizes(n, 2)[0]
    return _finish([X[order[:k0]], X[order[k0:]]], rng, "scm_chain", _unbounded())


# name -> (maker, one-line description); a "generator" in cfx is a counterfactual method
MAKERS = {
    "linearly_separable": (
        linearly_separable,
        "2 Gaussian blobs, std 0.1 at (±1, ±1): separable by a wide margin (2-D, synthetic)",
    ),
    "overlapping": (overlapping, "2 Gaussian blobs, std 0.5 at (±0.5, ±0.5): ~8% Bayes error (2-D, synthetic)"),
    "moons": (moons, "two interleaving half moons, noise 0.1 (2-D, synthetic)"),
    "circles": (circles, "ring around a central blob, noise 0.15, factor 0.01 (2-D, synthetic)"),
    "multiclass": (multiclass, "4 Gaussian blobs, std 0.35, classes 0..3 (2-D, synthetic)"),
    "cats_dogs": (cats_dogs, "cats vs dogs by height and tail length in cm, for the quick start (2-D, synthetic)"),
    "scm_chain": (
        scm_chain,
        "drawn from the linear SCM x1 -> x2 = x1 + u2 (u2 sd 0.5), label by x1 + x2: for MINT (2-D, synthetic)",
    ),
}


def __getattr__(name):
    """``GENERATORS`` (before cfx 0.2) is :data:`MAKERS`, with a warning."""
    if name == "GENERATORS":
        from cfx import _deprecated

        _deprecated.warn("cfx.data.synthetic.GENERATORS", "use cfx.data.synthetic.MAKERS")
        return MAKERS
    raise AttributeError(f"module 'cfx.data.synthetic' has no attribute {name!r}")

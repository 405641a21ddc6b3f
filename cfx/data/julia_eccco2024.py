"""The synthetic points of the ECCCo reference (Altmeyer et al., AAAI 2024) replayed from Julia's
random stream (``realisation: eccco-2024`` of the ``eccco`` kind): linearly separable, moons, circles.

What the reference does (ECCCo.jl tag ``results-camera-ready``: ``experiments/linearly_separable.jl``,
``moons.jl``, ``circles.jl``, ``setup_env.jl``; CounterfactualExplanations.jl 0.1.31
``src/data/synthetic/*.jl``, ``src/data_preprocessing/utils.jl``; its Manifest: Julia 1.9.4, MLJBase
0.21.14, StatsBase 0.34.0), each data set in its own script run:

- ``load_blobs(1250; cluster_std=0.1, center_box=(-1 => 1))``, ``load_moons(3125)``,
  ``load_circles(1250; noise=0.05, factor=0.5)``: each runs ``Random.seed!(42)`` (CE.jl's
  ``data_seed``) and then MLJBase's ``make_blobs(n, 2; centers=2, ...)`` / ``make_moons(n)`` (noise
  0.1, xshift 1, yshift 0.3) / ``make_circles(n; ...)`` on the global stream
  (:mod:`cfx.data.julia_mljbase`); ``X`` is cast to Float32; labels are MLJ's (blobs 1, 2 -> 0, 1).
- ``train_test_split(data; test_size=0.2)``: per class in sorted order, StatsBase's
  ``sample(findall(y .== c), floor(0.2 · round(N/2)); replace=false)`` on the *same* global stream,
  right after the draws above; with k · 24 > n that is ``fisher_yates_sample!``, whose
  ``rand(rng, i:n)`` is Julia's nearly-division-less sampler on ``rand(UInt64)``. The training rows
  are ``setdiff(1:N, test)``, in order: 1000 / 2501 / 1000 rows.
- ConformalPrediction.jl 0.1.12 fits every model on ``partition(eachindex(y), 0.5)`` without an rng:
  the first ``round(0.5 · n)`` training rows (:data:`N_FIT`), the rest calibrates.

Checked against the reference's trained models (``models/<data>_models.jls``): the JEM sampler's
buffer is clamped to ``prior_sampling_space`` = [min(mean − 3 sd), max(mean + 3 sd)] over the
features of these training rows; the replay gives LS [−0.5639409, 0.9334995] (the buffer's
extrema −0.5639408, 0.9334993) and circles' lower bound −1.6623205 (buffer −1.6623206). The
moons buffer does not reach its box, so moons is checked only through the shared pieces.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from cfx.data.julia_rng import MASK

__all__ = [
    "ECCCO_2024_SETS",
    "N_FIT",
    "N_ROWS",
    "OPTIONS",
    "eccco2024_points",
    "eccco2024_split",
    "julia_rand_range",
    "other_options",
]

ECCCO_2024_SETS = ("linearly_separable", "moons", "circles")
#: All rows a data set is drawn with: ``Int(n_train / (1 − 0.2))``.
N_ROWS = {"linearly_separable": 1250, "moons": 3125, "circles": 1250}
_TEST_SIZE, _DATA_SEED = 0.2, 42
#: Rows of the conformal fit split: MLJBase ``partition``'s ``round(Int, 0.5 · n)`` (ties to even).
N_FIT = {k: round(0.5 * (n - 2 * math.floor(_TEST_SIZE * round(n / 2)))) for k, n in N_ROWS.items()}
#: cfx's synthetic options that describe the same geometry as the replay (LS: also its centres).
OPTIONS = {
    "linearly_separable": {"std": 0.1},
    "moons": {"noise": 0.1, "yshift": 0.3},
    "circles": {"noise": 0.05, "factor": 0.5},
}


def other_options(name: str, options: dict) -> list[str]:
    """The keys of ``options`` that describe other points than the replay of ``name`` (sorted)."""
    from cfx.data.julia_rng import mljbase_blob_centers

    def same(k, v) -> bool:
        if name == "linearly_separable" and k == "centers":
            c = mljbase_blob_centers(_DATA_SEED, 2, 2, (-1.0, 1.0))
            return np.shape(v) == c.shape and np.allclose(v, c, atol=1e-7)
        return k in OPTIONS[name] and OPTIONS[name][k] == v

    return sorted(k for k, v in options.items() if not same(k, v))


def julia_rand_range(rng, lo: int, hi: int) -> int:
    """``rand(rng, lo:hi)`` for a 64-bit integer range (Julia ≥ 1.5's ``SamplerRangeNDL``, Lemire's
    nearly divisionless method): m = x · s for x = ``rand(UInt64)``, s = hi − lo + 1; redraw while
    m mod 2⁶⁴ < (2⁶⁴ − s) mod s; the value is lo + ⌊m / 2⁶⁴⌋."""
    s = hi - lo + 1
    m = rng.next_u64() * s
    if (m & MASK) < s:
        t = ((1 << 64) - s) % s
        while (m & MASK) < t:
            m = rng.next_u64() * s
    return lo + (m >> 64)


def _sample_without_replacement(rng, a: list[int], k: int) -> list[int]:
    """StatsBase 0.34 ``sample(rng, a, k; replace=false)`` where it takes ``fisher_yates_sample!``
    (2 < k, n < 24k): swap position i with ``rand(rng, i:n)`` for i = 1..k."""
    n = len(a)
    if not (2 < k and n < 24 * k):
        # StatsBase picks another algorithm here (self-avoiding or sequential sampling), which the
        # reference's splits (k = 20 % of a class, n / k = 5) never reach: refuse rather than guess
        raise ValueError(
            f"the eccco-2024 replay covers StatsBase's Fisher-Yates branch only (2 < k and n < 24k); "
            f"got n = {n}, k = {k}: use the reference's n and test_size"
        )
    inds = list(range(1, n + 1))
    out = []
    for i in range(1, k + 1):
        j = julia_rand_range(rng, i, n)
        inds[i - 1], inds[j - 1] = inds[j - 1], inds[i - 1]
        out.append(a[inds[i - 1] - 1])
    return out


@functools.lru_cache(maxsize=3)
def _replay(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from cfx.data.julia_mljbase import JuliaRandom, make_blobs, make_circles, make_moons

    rng, n = JuliaRandom(_DATA_SEED), N_ROWS[name]
    if name == "linearly_separable":
        X, y, _ = make_blobs(rng, n, 2, centers=2, cluster_std=0.1, center_box=(-1.0, 1.0))
        y = y - 1
    elif name == "moons":
        X, y = make_moons(rng, n)
    else:
        X, y = make_circles(rng, n, noise=0.05, factor=0.5)
    k = math.floor(_TEST_SIZE * round(n / 2))  # CE.jl: Int(floor(test_size · n_per_class)), Julia's round
    test = sorted(t for c in (0, 1) for t in _sample_without_replacement(rng, list(np.flatnonzero(y == c) + 1), k))
    train = np.setdiff1d(np.arange(n), np.asarray(test) - 1)
    X, y = X.astype(np.float32), np.asarray(y, np.int32)
    for a in (X, y):
        a.setflags(write=False)
    return X, y, train


def eccco2024_points(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X (N, 2) float32, y (N,) int32 in {0, 1}, training row indices in the reference's order) of
    ``name`` as the reference draws it; the other rows are its test set."""
    if name not in ECCCO_2024_SETS:
        raise ValueError(f"name must be one of {ECCCO_2024_SETS} for realisation eccco-2024; got {name!r}")
    return _replay(name)


def eccco2024_split(name: str):
    """(train, test) :class:`cfx.data.Dataset` of the reference, train in its row order (the first
    ``N_FIT[name]`` rows are what its models are fitted on)."""
    from cfx.data.dataset import Dataset, FeatureSchema

    X, y, train = eccco2024_points(name)
    test = np.setdiff1d(np.arange(len(y)), train)
    schema = FeatureSchema.default(2, ("x1", "x2"))
    return tuple(Dataset(X[i].copy(), y[i].copy(), schema, name=name, ids=i) for i in (train, test))

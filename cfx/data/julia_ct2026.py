"""The synthetic points of CounterfactualTraining.jl's SaTML 2026 experiments (``realisation:
ct-2026``), replayed from Julia's random streams, with the one draw that cannot be replayed said.

What the reference does (``paper/experiments``, Julia 1.11.5, TaijaData 1.1.7, MLJBase 0.21.14):

- ``CTExperiments/src/synthetic.jl``: LS, Overlapping, Circles, Moons load
  ``TaijaData.load_linearly_separable`` / ``load_overlapping`` / ``load_circles`` / ``load_moons``, each
  from a fresh ``Xoshiro(42)`` (``TaijaData.data_seed``; the LS / Overlapping loaders ignore their
  seed): ``make_blobs(n, 2; centers=2, cluster_std=0.5 / 2.0)`` in the default box (−10, 10)²,
  ``make_circles(n; noise=0.15, factor=0.01)``, ``make_moons(n)`` (noise 0.1, xshift 1, yshift 0.3).
  MLJBase 0.21.14's ``datasets_synthetic.jl`` is byte for byte 0.21.3's, so
  :mod:`cfx.data.julia_mljbase` draws them.
- ``model_and_data.jl`` ``get_data``: n = 100,000 points, Float32, columns permuted by
  ``randperm(Xoshiro(2025), 100000)`` (``train_test_seed`` = the global seed 2025); the first
  n_train + n_validation = 3,600 are training + validation, the last round(3600 / 0.8) − 3600 = 900 the test set.
- ``experiment.jl`` ``setup`` / ``train_val_split``: CE.jl's ``train_test_split(test_size = 600/3600,
  keep_class_ratio = true)`` holds out ``floor(600·share_c)`` rows of each class with StatsBase's
  ``sample(...; replace=false)`` from the **global** stream. Its state there is what ``Random.seed!(2025)``
  at the script's start left after every draw the process made before (other experiments of the grid on
  the same MPI rank, their training searches and initialisations): it cannot be replayed. Here those
  rows are drawn per class with ``numpy.random.default_rng(seed)`` (same counts), so the run seed moves
  only the hold-out; the training rows keep their order (``setdiff``).

Not checked against Julia itself (it is not installed here): Julia 1.11's streams. What supports them:
its documented ``Xoshiro(1234)`` uniforms and ``randperm(Xoshiro(123), 4) == [1, 4, 2, 3]`` (1.11's
``misc.jl``, ``randperm!`` still the inside-out shuffle on ``ltm52``) are what
:class:`cfx.data.julia_mljbase.JuliaRandom` gives; 1.11's ``hash_seed`` hashes a non-negative integer's
32-bit words as 1.8's ``make_seed`` did. ``randn`` (ziggurat) and ``XoshiroSimd`` (circles, moons) are
taken unchanged from 1.8 without a 1.11 test value.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["CT_2026_SETS", "ct2026_points", "ct2026_split", "N_POINTS", "N_TRAIN_VAL", "N_TEST", "N_VALIDATION"]

CT_2026_SETS = ("linearly_separable", "overlapping", "circles", "moons")
N_POINTS, N_TRAIN_VAL, N_VALIDATION, N_TEST = 100_000, 3600, 600, 900
_DATA_SEED, _SPLIT_SEED = 42, 2025  # TaijaData.data_seed; CTExperiments' global seed (train_test_seed)


@functools.lru_cache(maxsize=4)
def _shuffled(name: str) -> tuple[np.ndarray, np.ndarray]:
    from cfx.data.julia_mljbase import JuliaRandom, make_blobs, make_circles, make_moons

    rng = JuliaRandom(_DATA_SEED)
    if name in ("linearly_separable", "overlapping"):
        std = 0.5 if name == "linearly_separable" else 2.0
        X, y, _ = make_blobs(rng, N_POINTS, 2, centers=2, cluster_std=std, center_box=(-10.0, 10.0))
        y = y - 1  # labels 1, 2 -> 0, 1 (CE.jl's sorted y_levels)
    elif name == "circles":
        X, y = make_circles(rng, N_POINTS, noise=0.15, factor=0.01)
    else:
        X, y = make_moons(rng, N_POINTS)
    perm = JuliaRandom(_SPLIT_SEED).randperm(N_POINTS)
    X, y = X.astype(np.float32)[perm], np.asarray(y, np.int32)[perm]
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def ct2026_points(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(X (100000, 2) float32, y (100000,) int32 in {0, 1}): the reference's points of ``name`` after its
    ``randperm(Xoshiro(2025), 100000)``; rows [:3600] are training + validation, rows [-900:] the test set."""
    if name not in CT_2026_SETS:
        raise ValueError(f"name must be one of {CT_2026_SETS} for realisation ct-2026; got {name!r}")
    return _shuffled(name)


def ct2026_split(name: str, seed: int = 0):
    """(train, test) :class:`cfx.data.Dataset` of the reference: test = the 900 last shuffled points
    (exact); train = the first 3,600 less a per-class hold-out of ``floor(600·share_c)`` rows drawn with
    ``seed`` (the reference's hold-out comes from a global stream that cannot be replayed: see the module)."""
    from cfx.data.dataset import Dataset, FeatureSchema

    X, y = ct2026_points(name)
    Xtv, ytv = X[:N_TRAIN_VAL], y[:N_TRAIN_VAL]
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(ytv):  # CE.jl: Int(floor(test_size · share_c · N)) rows of class c, without replacement
        rows = np.flatnonzero(ytv == c)
        k = int(np.floor(N_VALIDATION / N_TRAIN_VAL * (rows.size / N_TRAIN_VAL) * N_TRAIN_VAL))  # Julia's float order
        held.append(rng.choice(rows, k, replace=False))
    keep = np.setdiff1d(np.arange(N_TRAIN_VAL), np.concatenate(held))
    schema = FeatureSchema.default(2, ("x1", "x2"))
    ids = np.arange(N_POINTS)
    train = Dataset(Xtv[keep].copy(), ytv[keep].copy(), schema, name=name, ids=ids[keep])
    test = Dataset(X[-N_TEST:].copy(), y[-N_TEST:].copy(), schema, name=name, ids=ids[-N_TEST:])
    return train, test

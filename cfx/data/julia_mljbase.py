"""MLJBase 0.21.3's synthetic data sets as Julia 1.8 draws them from its default random stream,
enough of it to regenerate the exact points a Julia reference wrote from a fixed seed.

The draws (Julia 1.8, ``Random.default_rng()`` = the task-local Xoshiro256++ stream of
:class:`cfx.data.julia_rng.Xoshiro`):

- ``rand(rng, k, p)`` with fewer than 64 bytes (k·p < 8 Float64): one stream output u per value,
  ``(u >> 11)·2⁻⁵³``, filled column-major; 64 bytes or more (``Random.XoshiroSimd``): 8 lanes
  forked from the stream (lane j of state word w = c_w · next(), the 32 draws taken word by
  word, c_w Julia's odd constants), each lane stepping on its own, the array filled lane by lane
  8 values at a time;
- ``randn()``: Marsaglia and Tsang's ziggurat on 52 bits (``r = next() >> 12``: bit 0 the sign,
  bits 1–8 the layer, ``r >> 1`` the magnitude), 256 layers with r = 3.6541528853610088 and
  layer area 0.00492867323399 (the tables are computed here by the ``randmtzig`` recursion);
  the tail and the wedges draw more;
- ``randperm(rng, n)``: the inside-out Fisher–Yates shuffle, j − 1 drawn as ``(next() >> 12) &
  mask`` until it is < i, the mask doubling as i passes 2^k (Julia's ``ltm52``).

MLJBase 0.21.3: ``make_blobs`` draws the centres in ``center_box`` (``rand(k, p)``), the points
``randn(n, p)``, scales and shifts rows ``nss[c]:nss[c+1]`` (inclusive: the row at each boundary
gets both clusters' transforms) and shuffles the rows with ``randperm``; ``make_circles``
draws angles ``2π·rand(n, 1)``, shrinks the first n/2 (label 0) by ``factor``, adds
``noise·randn(n, 2)`` and shuffles; ``make_moons`` draws angles ``π·rand(n, 1)``, flips the last
n − n/2 (label 1) to the lower moon shifted by (xshift, yshift), adds ``noise·randn(n, 2)`` and
shuffles.

:func:`ard2023_synthetic` is the companion repository of Altmeyer et al. (SaTML 2023),
``sections/data_preprocessing/synthetic_data.qmd``: ``Random.seed!(42)`` and then, in this order,
linearly separable, overlapping, circles and moons, 1000 points each. Checked against the
paper's scatter plot of its data (``paper/www/synthetic_data.png``: the outlying points of the
overlapping, circles and moons panels are where these draws put them).
"""

from __future__ import annotations

import math

import numpy as np

from cfx.data.julia_rng import MASK, Xoshiro, xoshiro_step

__all__ = ["JuliaRandom", "make_blobs", "make_circles", "make_moons", "ard2023_synthetic", "ARD_2023_SETS"]

_ZIG_R = 3.6541528853610088
_ZIG_INV_R = 0.27366123732975828
_ZIG_AREA = 0.00492867323399
_ZIG_SCALE = 2.0**51  # the magnitude r >> 1 has 51 bits
# XoshiroSimd's forkRand: lane state word w is c_w · next() (odd constants, hash(UInt(w)) | 1)
_FORK = (0x02011CE34BCE797F, 0x5A94851FB48A6E05, 0x3688CF5D48899FA7, 0x867B4BB4C42E5661)


def _ziggurat_tables():
    """(k, w, f): the acceptance bounds, widths and densities of the 256 layers (randmtzig)."""
    k, w, f = [0] * 256, [0.0] * 256, [0.0] * 256
    x1 = _ZIG_R
    w[255], f[255] = x1 / _ZIG_SCALE, math.exp(-0.5 * x1 * x1)
    k[0], w[0], f[0] = int(x1 * f[255] / _ZIG_AREA * _ZIG_SCALE), _ZIG_AREA / f[255] / _ZIG_SCALE, 1.0
    for i in range(254, 0, -1):
        x = math.sqrt(-2.0 * math.log(_ZIG_AREA / x1 + f[i + 1]))
        k[i + 1], w[i], f[i] = int(x / x1 * _ZIG_SCALE), x / _ZIG_SCALE, math.exp(-0.5 * x * x)
        x1 = x
    k[1] = 0
    return k, w, f


_K, _W, _F = _ziggurat_tables()


class JuliaRandom(Xoshiro):
    """Julia 1.8's default stream after ``Random.seed!(seed)``: ``rand``, ``randn``, ``randperm``."""

    def uniform(self) -> float:
        """A float64 in [0, 1) from the next 53 random bits (Julia's ``rand()``)."""
        return (self.next_u64() >> 11) * 2.0**-53

    def rand_array(self, n: int) -> np.ndarray:
        """``rand(rng, n)`` (any shape with n elements, filled in memory order)."""
        out, done = [], 0
        if 8 * n >= 64:  # XoshiroSimd: 8 forked lanes, 8 values per step
            lanes = [[(c * self.next_u64()) & MASK for _ in range(8)] for c in _FORK]
            for _ in range(n // 8):
                for j in range(8):
                    res, state = xoshiro_step((lanes[0][j], lanes[1][j], lanes[2][j], lanes[3][j]))
                    lanes[0][j], lanes[1][j], lanes[2][j], lanes[3][j] = state
                    out.append((res >> 11) * 2.0**-53)
            done = 8 * (n // 8)
        out += [self.uniform() for _ in range(n - done)]
        return np.array(out)

    def randn(self) -> float:
        """A standard normal draw by Julia's ziggurat (``randn()``)."""
        r = self.next_u64() >> 12
        rabs = r >> 1
        i = rabs & 0xFF
        x = (-rabs if r & 1 else rabs) * _W[i]
        if rabs < _K[i]:
            return x
        if i == 0:  # the tail beyond r
            while True:
                xx = -_ZIG_INV_R * math.log(self.uniform())
                yy = -math.log(self.uniform())
                if yy + yy > xx * xx:
                    return -_ZIG_R - xx if (rabs >> 8) & 1 else _ZIG_R + xx
        if (_F[i - 1] - _F[i]) * self.uniform() + _F[i] < math.exp(-0.5 * x * x):
            return x  # the wedge
        return self.randn()

    def randn_array(self, n: int, p: int) -> np.ndarray:
        """``randn(rng, n, p)``: n·p scalar draws, column-major."""
        return np.array([self.randn() for _ in range(n * p)]).reshape(n, p, order="F")

    def randperm(self, n: int) -> np.ndarray:
        """``randperm(rng, n)`` as 0-based indices."""
        a = [0] * n
        a[0], mask = 1, 3
        for i in range(2, n + 1):
            while True:
                j = (self.next_u64() >> 12) & mask
                if j < i:
                    break
            j += 1
            if i != j:
                a[i - 1] = a[j - 1]
            a[j - 1] = i
            if i == 1 + mask:
                mask = 2 * mask + 1
        return np.array(a) - 1


def make_blobs(
    rng: JuliaRandom, n: int, p: int = 2, *, centers: int = 2, cluster_std: float = 1.0, center_box=(-10.0, 10.0)
):
    """``MLJBase.make_blobs(n, p; centers, cluster_std, center_box)`` -> (X (n, p), y in 1..k, centres (k, p))."""
    lo, hi = (float(v) for v in center_box)
    c = (hi - lo) * rng.rand_array(centers * p).reshape(centers, p, order="F") + lo
    ns = [n // centers] * centers
    ns[-1] += n % centers
    y = np.concatenate([np.full(m, i + 1) for i, m in enumerate(ns)])
    X = rng.randn_array(n, p)
    bounds = [1, *np.cumsum(ns)]
    for k in range(centers):  # rows bounds[k]..bounds[k+1], 1-based and inclusive
        rows = slice(bounds[k] - 1, bounds[k + 1])
        X[rows] = X[rows] * cluster_std + c[k]
    perm = rng.randperm(n)
    return X[perm], y[perm], c


def make_circles(rng: JuliaRandom, n: int, *, noise: float = 0.0, factor: float = 0.8):
    """``MLJBase.make_circles(n; noise, factor)`` -> (X, y); y = 0 the inner circle."""
    theta = 2 * math.pi * rng.rand_array(n)
    X = np.stack([np.cos(theta), np.sin(theta)], 1)
    X[: n // 2] *= factor
    y = np.ones(n, int)
    y[: n // 2] = 0
    if noise:
        X = X + noise * rng.randn_array(n, 2)
    perm = rng.randperm(n)
    return X[perm], y[perm]


def make_moons(rng: JuliaRandom, n: int, *, noise: float = 0.1, xshift: float = 1.0, yshift: float = 0.3):
    """``MLJBase.make_moons(n; noise, xshift, yshift)`` -> (X, y); y = 1 the lower, shifted moon."""
    n1 = n // 2
    n2 = n - n1
    theta = math.pi * rng.rand_array(n)
    theta[n2:] *= -1
    X = np.stack([np.cos(theta), np.sin(theta)], 1)
    X[n2:, 0] += xshift
    X[n2:, 1] += yshift
    y = np.ones(n, int)
    y[:n1] = 0
    if noise:
        X = X + noise * rng.randn_array(n, 2)
    perm = rng.randperm(n)
    return X[perm], y[perm]


ARD_2023_SETS = ("linearly_separable", "overlapping", "circles", "moons")


def ard2023_synthetic(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(X (1000, 2) float64, y (1000,) int 0/1) of one of the four synthetic data sets of Altmeyer
    et al. (SaTML 2023) exactly as the companion's ``synthetic_data.qmd`` wrote them (rows in the
    CSV's order; blobs: target 0 for the first cluster, 1 for the second, as its ``ifelse``)."""
    if name not in ARD_2023_SETS:
        raise ValueError(f"name must be one of {ARD_2023_SETS}; got {name!r}")
    rng = JuliaRandom(42)
    out = {}
    for key, std in (("linearly_separable", 0.1), ("overlapping", 0.5)):
        X, y, _ = make_blobs(rng, 1000, 2, centers=2, cluster_std=std, center_box=(-2.0, 2.0))
        out[key] = (X, np.where(y == 1, 0, 1))
        if key == name:
            return out[key]
    out["circles"] = make_circles(rng, 1000, noise=0.15, factor=0.01)
    if name == "circles":
        return out["circles"]
    return make_moons(rng, 1000)

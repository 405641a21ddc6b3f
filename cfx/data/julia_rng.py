"""Julia's default random stream (Julia ≥ 1.7: Xoshiro256++), enough of it to regenerate the
draws a Julia reference makes from a fixed seed.

``Random.seed!(s)`` (or ``Xoshiro(s)``) for an integer s ≥ 0 hashes the little-endian 32-bit
words of s with SHA-256 and takes the digest as four little-endian UInt64 states; a Float64
``rand()`` is ``(next() >> 11) · 2⁻⁵³``. Checked against Julia's documented stream
(``Xoshiro(1234)``: 0.32597672886359486, 0.5490511363155669, ...; ``tests/test_eccco_preset.py``).

Used by the ``eccco-2024`` preset: the ECCCo reference draws its linearly separable data with
``Random.seed!(42); MLJBase.make_blobs(n, 2; centers=2, center_box=(-1 => 1))``, whose class
centres are the stream's first four uniforms (:func:`mljbase_blob_centers`).
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np

__all__ = ["Xoshiro", "mljbase_blob_centers"]

#: 64-bit unsigned arithmetic mask
MASK = (1 << 64) - 1


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & MASK


def xoshiro_step(state) -> tuple[int, tuple[int, int, int, int]]:
    """One Xoshiro256++ step of the state (s0, s1, s2, s3): (output, next state)."""
    s0, s1, s2, s3 = state
    out = (_rotl((s0 + s3) & MASK, 23) + s0) & MASK
    t = (s1 << 17) & MASK
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    return out, (s0, s1, s2, _rotl(s3, 45))


class Xoshiro:
    """Julia's ``Xoshiro(seed)`` / ``Random.seed!(seed)`` stream (pure Python, for a few draws)."""

    def __init__(self, seed: int):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an int >= 0; got {seed!r}")
        words, n = [], seed
        while True:  # Julia's make_seed: 32-bit words, least significant first
            words.append(n & 0xFFFFFFFF)
            n >>= 32
            if n == 0:
                break
        digest = hashlib.sha256(b"".join(struct.pack("<I", w) for w in words)).digest()
        self._s = struct.unpack("<4Q", digest)

    def next_u64(self) -> int:
        """One Xoshiro256++ output."""
        out, self._s = xoshiro_step(self._s)
        return out

    def rand(self, n: int) -> np.ndarray:
        """n Float64 uniforms in [0, 1): ``(next() >> 11) · 2⁻⁵³`` each (Julia's ``rand()``)."""
        return np.array([(self.next_u64() >> 11) * 2.0**-53 for _ in range(int(n))])


def mljbase_blob_centers(
    seed: int, n_centers: int = 2, n_features: int = 2, center_box: tuple[float, float] = (-1.0, 1.0)
) -> np.ndarray:
    """The class centres of ``Random.seed!(seed); MLJBase.make_blobs(n, p; centers=k, center_box=a => b)``:
    ``(b − a)·rand(k, p) + a``, filled column-major (Julia), shape (k, p); row c is class c + 1."""
    lo, hi = (float(v) for v in center_box)
    if not lo < hi:
        raise ValueError(f"center_box must be (lo, hi) with lo < hi; got {tuple(center_box)}")
    u = Xoshiro(seed).rand(n_centers * n_features).reshape(n_centers, n_features, order="F")
    return (hi - lo) * u + lo

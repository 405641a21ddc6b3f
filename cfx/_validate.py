"""Host-side value checks shared by every layer (the bottom layer: imports nothing of cfx)."""

from __future__ import annotations

import numpy as np


def as_real(label: str, value) -> np.ndarray:
    """``value`` as a float64 array, refusing what only looks like a number.

    numpy turns the string ``"0.1"`` into 0.1 and ``True`` into 1.0; a field given either is
    a mistake (a config read as text, a swapped argument) that would otherwise surface deep
    inside JAX as a dtype error. Raise TypeError naming ``label`` instead.
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{label} must be a number (or an array of numbers); got {value!r} ({type(value).__name__})")
    return arr.astype(np.float64)

"""Host-side value checks shared by every layer (the bottom layer: imports nothing of cfx)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def float_dtype() -> type:
    """The float type cfx computes in: float64 under ``jax_enable_x64``, else float32.

    Read at call time (never at import), so enabling x64 after ``import cfx`` takes effect."""
    return np.float64 if jax.config.read("jax_enable_x64") else np.float32


def as_float(value) -> jax.Array:
    """``value`` as a strong jax array of :func:`float_dtype` (``jnp.float32(value)`` without x64)."""
    return jnp.asarray(value, float_dtype())


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


def real(
    label: str,
    value,
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    allow_none: bool = False,
) -> float | None:
    """A finite scalar number in [low, high] (``open_low``: (low, high]) as a float; else
    TypeError (not a number) or ValueError (NaN, inf, out of range), naming ``label``."""
    if value is None and allow_none:
        return None
    arr = as_real(label, value)
    if arr.shape != ():
        raise TypeError(f"{label} must be a single number; got shape {arr.shape}")
    v = float(arr)
    if not np.isfinite(v):
        raise ValueError(f"{label} must be finite; got {value!r}")
    if low is not None and (v <= low if open_low else v < low):
        raise ValueError(f"{label} must be {'>' if open_low else '>='} {low:g}; got {value!r}")
    if high is not None and v > high:
        raise ValueError(f"{label} must be <= {high:g}; got {value!r}")
    return v


def integer(label: str, value, *, low: int | None = None) -> int:
    """An int (numpy ints too; not a bool, a float or a string) >= ``low``, naming ``label``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{label} must be an int; got {value!r} ({type(value).__name__})")
    if low is not None and value < low:
        raise ValueError(f"{label} must be an int >= {low}; got {value!r}")
    return int(value)


def samples(label: str, value, *, width: int | None = None, min_rows: int = 1) -> np.ndarray:
    """A finite float (n, d) array (:func:`float_dtype`) of data rows with n >= ``min_rows`` (and d == ``width``)."""
    try:
        arr = np.asarray(value, float_dtype())
    except (TypeError, ValueError) as err:
        raise TypeError(f"{label} must be an array of numbers of shape (n, d); got {type(value).__name__}") from err
    if arr.ndim != 2 or arr.shape[0] < min_rows:
        raise ValueError(f"{label} must have shape (n, d) with n >= {min_rows}; got shape {arr.shape}")
    if width is not None and arr.shape[1] != width:
        raise ValueError(f"{label} has {arr.shape[1]} features; expected {width}")
    if not np.isfinite(arr).all():
        i = int(np.argwhere(~np.isfinite(arr))[0][0])
        raise ValueError(f"{label} contains NaN or inf ({int((~np.isfinite(arr)).sum())} values; first in row {i})")
    return arr


def prng_key(key, label: str = "key"):
    """A single typed PRNG key (a raw uint32 (2,) key is wrapped); TypeError naming ``label``."""
    import jax  # the bottom layer imports no cfx module; jax is imported where a key is checked
    import jax.numpy as jnp

    if not isinstance(key, jax.Array):
        key = np.asarray(key)  # host-side: a wrong key is refused without a device transfer
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
        return key
    if key.dtype == np.uint32 and key.shape == (2,):
        return jax.random.wrap_key_data(jnp.asarray(key))
    raise TypeError(
        f"{label} must be a single PRNG key (jax.random.key(seed)); got dtype {key.dtype}, shape {key.shape}"
    )

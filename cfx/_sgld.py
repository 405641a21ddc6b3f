"""The SGLD core of :mod:`cfx.sampling` (its public names are re-exported there): one step of
each rule and the scanned sampler with its non-finite guard.

- ``"improper"``: ``x ← clamp(x − clip(∇E(x), ±c) + σ·ε, lb, ub)``;
- ``"jem"``: ``x ← x − η·∇E(x) + σ·ε`` (clamped only when bounds are given).
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
from flax import struct

#: ``energy_fn(x (B, d), *args) -> (B,)``: one energy per chain.
EnergyFn = Callable[..., jax.Array]

RULES = ("improper", "jem")


def _clamp(x: jax.Array, lower, upper) -> jax.Array:
    if lower is not None:
        x = jnp.maximum(x, lower)
    if upper is not None:
        x = jnp.minimum(x, upper)
    return x


def _energy_and_grad(energy_fn: EnergyFn, x: jax.Array, args: tuple) -> tuple[jax.Array, jax.Array]:
    """E(x) (B,) and ∇_x E (B, d) per chain: the VJP of E with a cotangent of ones."""
    e, vjp = jax.vjp(lambda z: energy_fn(z, *args), x)
    (g,) = vjp(jnp.ones_like(e))
    return e, g


def _move(rule: str, x, g, key, *, grad_clip, step_size, noise_scale, lower, upper) -> jax.Array:
    eps = jax.random.normal(key, x.shape, jnp.float32).astype(x.dtype)  # float32 draws: x64 agrees
    if rule == "improper":
        x = x - jnp.clip(g, -grad_clip, grad_clip) + noise_scale * eps
    elif rule == "jem":
        x = x - step_size * g + noise_scale * eps  # + η·∇f with f = −E
    else:
        raise ValueError(f"rule must be one of {RULES}; got {rule!r}")
    return _clamp(x, lower, upper)


@functools.partial(jax.jit, static_argnames=("energy_fn",))
def improper_sgld_step(
    energy_fn: EnergyFn,
    x: jax.Array,
    key: jax.Array,
    *,
    grad_clip=0.01,
    noise_scale=0.01,
    lower=None,
    upper=None,
    args: tuple = (),
) -> jax.Array:
    """One improper-SGLD step: ``clamp(x − clip(∇E(x), ±grad_clip) + noise_scale·ε, lower, upper)``.

    Args:
      energy_fn: ``(x (B, d), *args) -> (B,)``; static.
      x: chains (B, d). key: PRNG key for ε ~ N(0, I).
      grad_clip, noise_scale: c and σ (SPEC §3: both 0.01).
      lower, upper: per-feature bounds (d,) (or scalars); None: unbounded.

    No guard against non-finite values here; :func:`sgld` adds it.
    """
    _, g = _energy_and_grad(energy_fn, x, args)
    return _move(
        "improper", x, g, key, grad_clip=grad_clip, step_size=None, noise_scale=noise_scale, lower=lower, upper=upper
    )


@functools.partial(jax.jit, static_argnames=("energy_fn",))
def jem_sgld_step(
    energy_fn: EnergyFn,
    x: jax.Array,
    key: jax.Array,
    *,
    step_size=1.0,
    noise_scale=0.01,
    lower=None,
    upper=None,
    args: tuple = (),
) -> jax.Array:
    """One step of the original JEM sampler: ``x + step_size·∇f(x) + noise_scale·ε``, f = −E.

    Pass ``E(x) = −logsumexp_y f_y(x)`` for JEM's unconditional p(x), ``E(x|y) = −f_y(x)``
    for p(x|y). Defaults η = 1, σ = 0.01 (Grathwohl et al. 2020); clamped to
    [lower, upper] when given.
    """
    _, g = _energy_and_grad(energy_fn, x, args)
    return _move(
        "jem", x, g, key, grad_clip=None, step_size=step_size, noise_scale=noise_scale, lower=lower, upper=upper
    )


@struct.dataclass
class SGLDInfo:
    """What :func:`sgld` reports besides the samples.

    Attributes:
      energy: (B,) energy at the returned points (+inf where it is not finite).
      resets: (B,) int32, how often each chain was reset to its last finite point.
      reset_share: scalar, share of chains reset at least once.
    """

    energy: jax.Array
    resets: jax.Array
    reset_share: jax.Array


def _finite_rows(a: jax.Array) -> jax.Array:
    return jnp.all(jnp.isfinite(a.reshape(a.shape[0], -1)), axis=-1)


@functools.partial(jax.jit, static_argnames=("energy_fn", "steps", "rule"))
def sgld(
    energy_fn: EnergyFn,
    x0: jax.Array,
    key: jax.Array,
    *,
    steps: int,
    rule: str = "improper",
    lower=None,
    upper=None,
    grad_clip=0.01,
    step_size=1.0,
    noise_scale=0.01,
    args: tuple = (),
) -> tuple[jax.Array, SGLDInfo]:
    """Run ``steps`` SGLD steps on every chain of ``x0`` (B, d): one ``lax.scan``.

    Each step evaluates E and ∇E at the current point x_t. Where either is not finite
    (or x_t is not), the chain is *reset* to its last point with finite energy and
    gradient and takes no step; otherwise it moves by ``rule`` (``"improper"``:
    ``x − clip(∇E, ±grad_clip) + noise_scale·ε``; ``"jem"``: ``x − step_size·∇E +
    noise_scale·ε``), then is clamped to [lower, upper]. Non-finite entries of ``x0`` are
    replaced by 0 (clamped to the bounds). No NaN leaves this function.

    Args:
      energy_fn: ``(x (B, d), *args) -> (B,)``; static (hashable).
      x0: (B, d) initial points. key: PRNG key (same key, same chains).
      steps: number of steps (static). rule: ``"improper"`` or ``"jem"`` (static).
      lower, upper: per-feature bounds (d,) or None.
      grad_clip, step_size, noise_scale: see the rules (SPEC §3 defaults).
      args: PyTree of arrays passed to ``energy_fn`` (traced).

    Returns:
      ``(x, info)``: samples (B, d) and an :class:`SGLDInfo`.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}; got {rule!r}")
    x0 = _clamp(jnp.where(jnp.isfinite(x0), x0, 0.0), lower, upper)
    move = functools.partial(
        _move, rule, grad_clip=grad_clip, step_size=step_size, noise_scale=noise_scale, lower=lower, upper=upper
    )

    def body(carry, k):
        x, good, resets = carry
        e, g = _energy_and_grad(energy_fn, x, args)
        ok = jnp.isfinite(e) & _finite_rows(g) & _finite_rows(x)
        # Zero the gradient of bad rows so no NaN enters the arithmetic of the kept branch.
        proposal = move(jnp.where(ok[:, None], x, good), jnp.where(ok[:, None], g, 0.0), k)
        x_next = jnp.where(ok[:, None], proposal, good)
        good = jnp.where(ok[:, None], x, good)
        return (x_next, good, resets + (~ok).astype(jnp.int32)), None

    keys = jax.random.split(key, steps)
    init = (x0, x0, jnp.zeros(x0.shape[0], jnp.int32))
    (x, good, resets), _ = jax.lax.scan(body, init, keys)
    e = energy_fn(x, *args)
    ok = jnp.isfinite(e) & _finite_rows(x)
    x = jnp.where(ok[:, None], x, good)
    resets = resets + (~ok).astype(jnp.int32)
    e = jnp.where(ok, e, energy_fn(x, *args))
    e = jnp.where(jnp.isfinite(e), e, jnp.inf)
    return x, SGLDInfo(energy=e, resets=resets, reset_share=jnp.mean(resets > 0))

"""Tracks: optax-shaped pairs of pure functions that follow the iterates of a search.

``cfx.generate(..., track=t)`` calls ``t.init`` on the start and ``t.update`` after every
step; the final state is ``result.track``. ``return_path=True`` is :func:`track_path`.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cfx._reductions import norm_last


class Track(NamedTuple):
    """An optax-shaped pair of pure functions that follows the iterates of a search.

    ``init(x0, x) -> state`` sees the start x0 (n, K, d) and the factuals (n, d);
    ``update(state, x_t, t, active) -> state`` sees the counterfactuals after step t (input
    space, one-hot groups relaxed) and the (n, K) rows that moved. Build a track once and
    reuse it: it is part of the compiled program's identity.
    """

    init: Callable
    update: Callable


@functools.lru_cache(maxsize=None)
def track_path(max_steps: int) -> Track:
    """Every iterate: state (n, K, max_steps + 1, d); entry s is the point after step s."""

    def init(x0, x):
        path = jnp.zeros(x0.shape[:2] + (max_steps + 1,) + x0.shape[2:], x0.dtype)
        return path.at[:, :, 0].set(x0)

    def update(path, x_t, t, active):
        return jax.lax.dynamic_update_index_in_dim(path, x_t, t + 1, axis=2)

    return Track(init, update)


@functools.lru_cache(maxsize=None)
def track_last_within(radius: float, ord: float = np.inf) -> Track:
    """The last iterate still within ``‖x_t − x‖_ord ≤ radius`` of its factual (the factual
    itself if none), in O(n·K·d) memory: counterfactual training's nascent counterfactuals.
    State: (last (n, K, d), x (n, d)); read ``result.track[0]``."""

    def init(x0, x):
        return jnp.broadcast_to(x[:, None, :], x0.shape), x

    def update(state, x_t, t, active):
        last, x = state
        inside = norm_last(x_t - x[:, None, :], ord) <= radius
        return jnp.where((inside & active)[..., None], x_t, last), x

    return Track(init, update)

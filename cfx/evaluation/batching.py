"""The jitted, chunked drivers that run traced metric functions over many units.

A unit is one counterfactual (d,) or one set of K counterfactuals (K, d). Each metric
family runs as ``lax.map(fn, units, batch_size=B)`` (vmapped inside a chunk of B units,
sequential over chunks) inside one jitted function; B comes from the family's per-unit cost
and a fixed element budget, so memory stays bounded for any N. The context (with the
classifier) is a jit argument: new parameters, data or τ of the same shapes never recompile.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from cfx._validate import float_dtype

#: Largest intermediate array (in elements) one chunk of a metric computation may build.
#: 2**24 float32 = 64 MiB: e.g. 800 query rows x 20,000 data rows per kNN chunk.
CHUNK_ELEMENTS = 2**24
#: Most input rows the classifier sees in one chunk (bounds its hidden activations, which
#: the evaluation cannot see: 8192 rows x 1000 hidden units = 32 MiB per layer).
MODEL_ROWS = 8192


def chunk_size(n_rows: int, elements_per_row: int, model_rows_per_row: int = 0) -> int:
    """Rows per chunk so that one chunk builds at most ``CHUNK_ELEMENTS`` elements and sends
    at most ``MODEL_ROWS`` inputs through the classifier (at least 1, at most ``n_rows``)."""
    size = CHUNK_ELEMENTS // max(1, elements_per_row)
    if model_rows_per_row:
        size = min(size, MODEL_ROWS // model_rows_per_row)
    return int(max(1, min(n_rows, size)))


@functools.partial(jax.jit, static_argnames=("batch_size",))
def predict_labels(clf, X, *, batch_size: int):
    """argmax f(x) for every row of X (N, d) -> (N,) int32, in chunks."""
    return jax.lax.map(lambda row: jnp.argmax(clf.raw_logits(row[None])[0]).astype(jnp.int32), X, batch_size=batch_size)


@functools.partial(jax.jit, static_argnames=("fn", "names", "batch_size"))
def map_metrics(ctx, units, x, target, *, fn, names: tuple[str, ...], batch_size: int):
    """``fn(unit, x_i, target_i, ctx)`` for every unit -> ``{name: (m,) float32}``.

    ``fn`` returns a scalar (a lone metric, reported as ``names[0]``) or a dict holding
    every name in ``names`` (a family; other keys are dropped, so XLA prunes their work).
    """

    def one(args):
        unit, x_i, t_i = args
        out = fn(unit, x_i, t_i, ctx)
        if not isinstance(out, dict):
            out = {names[0]: out}
        return {k: jnp.asarray(out[k]).astype(float_dtype()) for k in names}

    return jax.lax.map(one, (units, x, target), batch_size=batch_size)

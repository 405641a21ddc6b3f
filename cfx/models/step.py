"""The train step: one pure update ``train_step(state, batch, key) -> (state, metrics)``.

Every way of training a model in cfx (plain cross-entropy, later JEM, a VAE's ELBO,
counterfactual training) is this one step with a different *loss*; there is no second
training loop. A loss follows this protocol::

    loss_fn(params, batch, key, *, apply, extra) -> (loss, (new_extra, aux_metrics))

- ``params``: the model parameters, the only argument differentiated.
- ``batch``: a :class:`Batch` of ``x`` (B, d), ``y`` (B,) and per-example weights
  ``w`` (B,); padded slots have ``w_i = 0`` and must not count. Losses reduce with the
  weighted mean ``L = Σ_i w_i ℓ_i / Σ_i w_i`` (see :func:`cfx.models.losses.weighted_mean`).
- ``key``: a fresh PRNG key per step (dropout, SGLD, sampling); split it as needed.
- ``apply(params, x, key) -> logits``: the model's training-mode forward pass (dropout
  on when ``key`` is a key; ``key=None`` is the deterministic pass). Raw model output:
  a single-logit binary model gives (B, 1); losses expand it with
  :func:`cfx.classifier.two_class_logits`.
- ``extra``: the state's ``extra`` PyTree (``None`` by default; e.g. a JEM replay
  buffer). The loss returns ``new_extra`` with the same structure, shapes and dtypes;
  it becomes ``state.extra`` for the next step. Not differentiated.
- ``aux_metrics``: a dict of scalars reported next to ``"loss"``.

The step computes ``(L, (e', m)), g = value_and_grad(loss_fn)(θ)``, then the optax
update ``u, s' = tx.update(g, s, θ)``, ``θ' = θ + u``, and returns
``TrainState(step + 1, θ', s', e')`` with metrics ``{"loss": L, **m}``.

One epoch (:func:`train_epoch`) is a ``lax.scan`` of the step over shuffled, padded
mini-batches, so it compiles to one call; epoch metrics are the weighted means
``Σ_b W_b m_b / Σ_b W_b`` with ``W_b = Σ_{i∈b} w_i``.

Example (a loss that keeps a step counter in ``extra``)::

    def counting_ce(params, batch, key, *, apply, extra):
        loss, (_, aux) = cross_entropy(params, batch, key, apply=apply, extra=None)
        return loss, (extra + 1, aux)

    state = TrainState.create(params, tx, extra=jnp.int32(0))
    state, metrics = train_step(state, Batch(x, y, w), key, apply=apply, loss_fn=counting_ce, tx=tx)
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct

from cfx._validate import float_dtype

#: ``loss_fn(params, batch, key, *, apply, extra) -> (loss, (new_extra, aux_metrics))``.
LossFn = Callable[..., tuple[jax.Array, tuple[Any, dict]]]
#: ``apply(params, x, key | None) -> logits``: the training-mode forward pass.
TrainApply = Callable[[Any, jax.Array, Any], jax.Array]


@struct.dataclass
class Batch:
    """One mini-batch: inputs ``x`` (B, d), labels ``y`` (B,) int, weights ``w`` (B,) float.

    Padded slots (the ragged end of an epoch) have weight 0.
    """

    x: jax.Array
    y: jax.Array
    w: jax.Array


@struct.dataclass
class TrainState:
    """What changes during training, as one PyTree (every field is a leaf or a subtree).

    Attributes:
      step: number of train steps taken, int32 scalar.
      params: model parameters (for ensembles stacked on a leading member axis M).
      opt_state: optax state of ``tx`` (hyperparameters injected there, so they are leaves).
      extra: any PyTree a loss carries from step to step (``None``: nothing), e.g. a
        JEM replay buffer. For ensembles each member has its own: leading axis M.

    The optimiser ``tx`` itself is *not* stored here: it is passed to :func:`train_step`
    as a static argument, so a new state never triggers a recompilation.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    extra: Any = None

    @classmethod
    def create(cls, params: Any, tx: optax.GradientTransformation, extra: Any = None) -> "TrainState":
        """A state at step 0 with ``opt_state = tx.init(params)``."""
        return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), extra=extra)


def _check_loss_output(out: Any) -> tuple[jax.Array, Any, dict]:
    # Runs at trace time only: a loss that breaks the protocol fails with a message
    # that names it, not with an unpacking error deep inside scan.
    ok = isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], tuple) and len(out[1]) == 2
    if not ok or not isinstance(out[1][1], dict):
        raise TypeError(
            "loss_fn must return (loss, (new_extra, aux_metrics)) with aux_metrics a dict; "
            f"got {jax.tree_util.tree_structure(out)}"
        )
    loss, (extra, aux) = out
    if jnp.shape(loss) != ():
        raise TypeError(f"loss_fn must return a scalar loss; got shape {jnp.shape(loss)}")
    return loss, extra, aux


def train_step(
    state: TrainState,
    batch: Batch,
    key: jax.Array,
    *,
    apply: TrainApply,
    loss_fn: LossFn,
    tx: optax.GradientTransformation,
) -> tuple[TrainState, dict]:
    """One optimiser step on ``loss_fn`` (see the module docstring for the protocol).

    ``(L, (e', m)), g = value_and_grad(loss_fn)(θ)``; ``θ' = θ + tx.update(g, s, θ)``.

    Args:
      state: the current :class:`TrainState`.
      batch: a :class:`Batch` (x (B, d), y (B,), w (B,)).
      key: PRNG key handed to the loss.
      apply, loss_fn, tx: the forward pass, loss and optimiser (static: not traced).

    Returns:
      ``(new_state, metrics)`` with ``metrics = {"loss": L, **aux_metrics}``. Pure: the
      same inputs give the same outputs; ``state`` is not modified.
    """

    def objective(params):
        out = loss_fn(params, batch, key, apply=apply, extra=state.extra)
        loss, extra, aux = _check_loss_output(out)
        return loss, (extra, aux)

    (loss, (extra, aux)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(
        step=state.step + 1, params=optax.apply_updates(state.params, updates), opt_state=opt_state, extra=extra
    )
    return new_state, {**aux, "loss": loss}


def shuffled_batches(key: jax.Array, n: int, batch_size: int) -> tuple[jax.Array, jax.Array]:
    """Row indices (n_batches, B) of a random permutation and weights (n_batches, B).

    The permutation is padded to ``n_batches = ⌈n / B⌉`` whole batches with real indices
    at weight 0, so shapes are static and every example counts exactly once per epoch.
    """
    n_batches = -(-n // batch_size)
    pad = n_batches * batch_size - n
    perm = jax.random.permutation(key, n)
    idx = jnp.concatenate([perm, perm[:pad]]).reshape(n_batches, batch_size)
    w = jnp.concatenate([jnp.ones(n, float_dtype()), jnp.zeros(pad, float_dtype())]).reshape(n_batches, batch_size)
    return idx, w


def train_epoch(
    state: TrainState,
    X: jax.Array,
    y: jax.Array,
    key: jax.Array,
    *,
    apply: TrainApply,
    loss_fn: LossFn,
    tx: optax.GradientTransformation,
    batch_size: int,
) -> tuple[TrainState, dict]:
    """One shuffled pass over (X (n, d), y (n,)): ``lax.scan`` of :func:`train_step`.

    Returns the final state and the epoch metrics, each ``Σ_b W_b m_b / Σ_b W_b`` over
    batches b with ``W_b = Σ_{i∈b} w_i`` (for the loss: the mean per-example loss).
    Pure and traceable; jit it with ``apply``, ``loss_fn``, ``tx`` and ``batch_size`` static.
    """
    k_perm, k_steps = jax.random.split(key)
    idx, w = shuffled_batches(k_perm, X.shape[0], batch_size)
    step = functools.partial(train_step, apply=apply, loss_fn=loss_fn, tx=tx)

    def body(state, inputs):
        i, wb, k = inputs
        state, metrics = step(state, Batch(X[i], y[i], wb), k)
        return state, (metrics, jnp.sum(wb))

    keys = jax.random.split(k_steps, idx.shape[0])
    state, (metrics, weights) = jax.lax.scan(body, state, (idx, w, keys))
    total = jnp.sum(weights)
    return state, jax.tree_util.tree_map(lambda m: jnp.sum(m * weights) / total, metrics)

"""Training schedules: the order of the mini-batches, bagged ensemble members, members trained one
after another, and a pass of the loss's state at the end of every epoch.

:func:`fit_scheduled` trains exactly as :func:`cfx.models.fit` (same models, losses, optimiser,
train step) with four options of *how the data meet the step*; with their defaults it is
``fit``'s own schedule (a new permutation every epoch, every member on all rows, members in
parallel, no end-of-epoch pass):

- ``batch_order``: ``"shuffle"`` (a fresh permutation of the rows every epoch) or ``"fixed"``
  (one permutation drawn once from the seed, then the same batches in the same order every
  epoch, the ragged batch last). MLJFlux (0.3) cuts the rows into
  ``Iterators.partition(1:n, batch_size)`` once and loops over them in that order every epoch.
- ``bagging`` f ∈ (0, 1] (ensembles): member m trains on ``⌊f·n⌋`` rows drawn without
  replacement (own draw per member, in random order); f = 1: all rows. MLJEnsembles'
  ``EnsembleModel`` (default ``bagging_fraction = 0.8``).
- ``members``: ``"parallel"`` (members vmapped, each with its own ``extra``) or ``"sequential"``
  (member after member, each starting from the ``extra`` the previous one left, e.g. one JEM
  replay buffer for all members: MLJEnsembles fits the same atom n times and a
  ``JointEnergyClassifier``'s sampler, buffer included, is a field of that atom).
- ``epoch_pass``: after each epoch, ``loss.epoch_pass(params, extra, key, apply=, n_calls=)``
  with the epoch's final parameters and one call per training batch (the loss must define it:
  :meth:`cfx.models.ReferenceJEMLoss.epoch_pass`, JointEnergyModels.jl's per-epoch evaluation,
  which runs the sampler once per batch).

Example::

    clf = fit_scheduled(train, "ensemble", batch_order="fixed", bagging=0.8, epochs=100)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from cfx._validate import as_real
from cfx.classifier import Classifier
from cfx.models.ensemble import Ensemble
from cfx.models.losses import cross_entropy
from cfx.models.registry import MODELS
from cfx.models.step import Batch, LossFn, TrainState, shuffled_batches, train_step
from cfx.models.train import (
    _TX,
    _build,
    _check_dataset,
    _check_finite_metrics,
    _check_loss,
    _check_positive_int,
    _init_opt_state,
)

__all__ = ["fit_scheduled", "member_rows", "BATCH_ORDERS", "MEMBER_MODES"]

#: ``batch_order`` values (cfx's default first).
BATCH_ORDERS = ("shuffle", "fixed")
#: ``members`` values (cfx's default first).
MEMBER_MODES = ("parallel", "sequential")


@dataclasses.dataclass(frozen=True)
class _Schedule:
    """Static part of a scheduled run (hashable: the compiled epoch is cached on it)."""

    apply: Any  # the member's ModuleApply
    loss: LossFn
    batch_size: int
    batch_order: str
    epoch_pass: bool


def member_rows(key: jax.Array, n: int, n_members: int, bagging: float) -> jax.Array:
    """Rows (M, ⌊f·n⌋) each member trains on: all rows in order for f = 1, else a draw without
    replacement per member (in random order, as ``StatsBase.sample(rng, 1:n, k; replace=false)``)."""
    k = max(1, int(np.floor(bagging * n)))
    if k == n:
        return jnp.broadcast_to(jnp.arange(n), (n_members, n))
    keys = jax.random.split(key, n_members)
    return jax.vmap(lambda kk: jax.random.permutation(kk, n)[:k])(keys)


def _member_epoch(sched: _Schedule, state: TrainState, X, y, rows, key, epoch) -> tuple[TrainState, dict]:
    """One epoch of one member over its ``rows``: batches in the schedule's order, ``lax.scan``
    of the train step, then the loss's end-of-epoch pass if asked."""
    k_order, k_steps, k_pass = jax.random.split(key, 3)
    k_perm = k_order if sched.batch_order == "fixed" else jax.random.fold_in(k_order, epoch)
    local, w = shuffled_batches(k_perm, rows.shape[0], sched.batch_size)
    idx = rows[local]
    step = functools.partial(train_step, apply=sched.apply.train_logits, loss_fn=sched.loss, tx=_TX)

    def body(state, inputs):
        i, wb, k = inputs
        state, metrics = step(state, Batch(X[i], y[i], wb), k)
        return state, (metrics, jnp.sum(wb))

    keys = jax.random.split(jax.random.fold_in(k_steps, epoch), idx.shape[0])
    state, (metrics, weights) = jax.lax.scan(body, state, (idx, w, keys))
    if sched.epoch_pass:
        extra = sched.loss.epoch_pass(
            state.params,
            state.extra,
            jax.random.fold_in(k_pass, epoch),
            apply=sched.apply.train_logits,
            n_calls=idx.shape[0],
        )
        state = state.replace(extra=extra)
    total = jnp.sum(weights)
    return state, jax.tree_util.tree_map(lambda m: jnp.sum(m * weights) / total, metrics)


_MEMBER_AXES = TrainState(step=None, params=0, opt_state=0, extra=0)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _run_epoch(sched: _Schedule, parallel: bool, state, X, y, rows, keys, epoch):
    """Jitted epoch: one member (rows (k,), one key) or vmapped members (rows (M, k), keys (M,))."""
    if not parallel:
        return _member_epoch(sched, state, X, y, rows, keys, epoch)
    run = jax.vmap(
        functools.partial(_member_epoch, sched),
        in_axes=(_MEMBER_AXES, None, None, 0, 0, None),
        out_axes=(_MEMBER_AXES, 0),
    )
    state, metrics = run(state, X, y, rows, keys, epoch)
    return state, jax.tree_util.tree_map(jnp.mean, metrics)


def _check_options(batch_order, bagging, members, epoch_pass, loss) -> float:
    if batch_order not in BATCH_ORDERS:
        raise ValueError(f"batch_order must be one of {BATCH_ORDERS}; got {batch_order!r}")
    if members not in MEMBER_MODES:
        raise ValueError(f"members must be one of {MEMBER_MODES}; got {members!r}")
    bagging = as_real("bagging", bagging)
    if not (np.isfinite(bagging) and 0.0 < bagging <= 1.0):
        raise ValueError(f"bagging must be a fraction in (0, 1]; got {bagging!r}")
    if not isinstance(epoch_pass, (bool, np.bool_)):
        raise TypeError(f"epoch_pass must be a bool; got {epoch_pass!r}")
    if epoch_pass and not callable(getattr(loss, "epoch_pass", None)):
        raise ValueError(
            f"epoch_pass=True needs a loss with an epoch_pass method (e.g. ReferenceJEMLoss); got {type(loss).__name__}"
        )
    return float(bagging)


def fit_scheduled(
    dataset,
    model: str = "mlp",
    *,
    batch_order: str = "shuffle",
    bagging: float = 1.0,
    members: str = "parallel",
    epoch_pass: bool = False,
    epochs: int = 100,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
    widths: Sequence[int] = (64, 64),
    activation: str = "relu",
    n_members: int = 5,
    n_classes: int | None = None,
    loss: LossFn = cross_entropy,
    extra: Any = None,
    return_state: bool = False,
) -> Classifier | tuple[Classifier, TrainState]:
    """Train a registered model as :func:`cfx.models.fit` does, on the schedule the options give
    (module docstring). ``bagging`` and ``members`` act on ensembles only.

    ``extra``: the loss's initial state (None: the model's own, e.g. a fresh JEM buffer). With
    ``members="sequential"`` it is one member's state (no member axis), handed from member to
    member; ``return_state=True`` also returns the final :class:`TrainState` (its ``extra`` the
    last member's, so another model can continue from it).
    """
    if not isinstance(model, str):
        raise TypeError(f"model must be a registered model name ({MODELS.names()}); got {type(model).__name__}")
    X, y = _check_dataset(dataset)
    epochs = _check_positive_int("epochs", epochs)
    batch_size = _check_positive_int("batch_size", batch_size)
    if not (np.isfinite(as_real("learning_rate", learning_rate)) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive finite float; got {learning_rate!r}")
    loss = _check_loss(loss)
    n_classes = max(int(y.max()) + 1, 2) if n_classes is None else _check_positive_int("n_classes", n_classes)
    apply, _, out_classes = _build(
        model, X.shape[1], n_classes=n_classes, widths=widths, activation=activation, dropout=0.0, n_members=n_members
    )
    ensemble = isinstance(apply, Ensemble)
    setup = MODELS.get(model).setup
    sequential = ensemble and members == "sequential"
    if setup is not None:  # the model's own objective; one buffer (no member axis) when members share it
        loss, extra = setup(
            loss, extra, X, n_classes=out_classes, apply=apply.member if sequential else apply, seed=int(seed)
        )
    bagging = _check_options(batch_order, bagging, members, epoch_pass, loss)
    extra = jax.tree_util.tree_map(jnp.asarray, extra)
    n, d = X.shape
    k_init, k_train = jax.random.split(jax.random.key(int(seed)))
    k_rows, k_members = jax.random.split(k_train)
    params = apply.init(k_init, d)
    member = apply.member if ensemble else apply
    n_m = apply.n_members if ensemble else 1
    rows = member_rows(k_rows, n, n_m, bagging if ensemble else 1.0)
    sched = _Schedule(
        apply=member,
        loss=loss,
        batch_size=min(batch_size, int(rows.shape[1])),
        batch_order=batch_order,
        epoch_pass=bool(epoch_pass),
    )
    keys = jax.random.split(k_members, n_m)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    init_opt = functools.partial(_init_opt_state, learning_rate=learning_rate, weight_decay=0.0)

    def train(state, member_rows_, member_keys, parallel):
        for epoch in range(epochs):
            state, metrics = _run_epoch(sched, parallel, state, Xj, yj, member_rows_, member_keys, jnp.int32(epoch))
        _check_finite_metrics(model, epochs - 1, metrics)
        return state

    step0 = jnp.zeros((), jnp.int32)
    if not ensemble:
        state = train(TrainState(step0, params, init_opt(params), extra), rows[0], keys[0], False)
    elif not sequential:
        state = train(TrainState(step0, params, jax.vmap(init_opt)(params), extra), rows, keys, True)
    else:  # one member after another, the loss state handed on
        done = []
        for m in range(n_m):
            p_m = jax.tree_util.tree_map(lambda a: a[m], params)
            state = train(TrainState(step0, p_m, init_opt(p_m), extra), rows[m], keys[m], False)
            extra = state.extra
            done.append(state.params)
        stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *done)
        state = state.replace(params=stacked)
    clf = Classifier(apply, state.params, n_features=d, n_classes=out_classes)
    return (clf, state) if return_state else clf

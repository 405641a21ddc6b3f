"""Training: ``fit(dataset, model) -> Classifier``, a thin wrapper over the pure train step.

``fit`` minimises a *loss* (default: weighted softmax cross-entropy
``Σ_i w_i CE(f(x_i), y_i) / Σ_i w_i``, multiclass members too: SPEC §3) with AdamW
(``weight_decay=0`` is exactly Adam). Any loss following the protocol of
:mod:`cfx.models.step` plugs in through ``fit(..., loss=...)``; there is one training loop.

One epoch is one compiled call (:func:`cfx.models.train_epoch`): shuffle with a PRNG
key, pad the permutation to whole mini-batches (padded slots carry weight 0, so every
example counts exactly once per epoch), and ``lax.scan`` the train step over the
batches. Epochs loop in Python so a progress bar can report them. The learning rate and
weight decay live in the optimiser state (``optax.inject_hyperparams``), and the
compiled epoch is cached on a hashable spec (model, loss, batch size, optimiser), so a
warm-started refit with the same shapes — every round of a recourse-dynamics
simulation — reuses the compiled code. Ensembles ``vmap`` the same epoch over members
(own init keys, own shuffles, own ``extra``).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from cfx._streams import interactive
from cfx._validate import as_float, as_real, float_dtype
from cfx.classifier import Classifier
from cfx.models.ensemble import Ensemble
from cfx.models.losses import cross_entropy
from cfx.models.mlp import ModuleApply
from cfx.models.registry import MODELS
from cfx.models.step import LossFn, TrainState, train_epoch
from cfx.models._checks import (
    _build,
    _check_dataset,
    _check_extra,
    _check_loss,
    _check_positive_int,
    _model_options,
    _own_fit,
    _warm_params,
)


def list_models() -> dict[str, str]:
    """Model names accepted by :func:`fit` (the registry :data:`cfx.models.MODELS`), with a one-line description each."""
    return MODELS.describe()


# ----------------------------------------------------------------------------------
# the compiled epoch
# ----------------------------------------------------------------------------------

#: The one optimiser object: AdamW whose learning rate and weight decay are read from
#: its state (inject_hyperparams), so they are array leaves and one compiled epoch
#: serves every value. A single module-level object also keeps the spec hashable/equal.
_TX = optax.inject_hyperparams(optax.adamw)(learning_rate=0.0, weight_decay=0.0)

#: vmap axes of an ensemble's state: members on axis 0 (their own params, optimiser
#: state and extra), one shared step count.
_MEMBER_AXES = TrainState(step=None, params=0, opt_state=0, extra=0)


@dataclasses.dataclass(frozen=True)
class _Spec:
    """Static (hashable) part of a training run; the compiled epoch is cached on it."""

    apply: ModuleApply | Ensemble
    loss: LossFn
    batch_size: int
    tx: optax.GradientTransformation = _TX


def _init_opt_state(params: Any, learning_rate: float, weight_decay: float) -> Any:
    """``_TX.init(params)`` with the real learning rate and weight decay in its state."""
    state = _TX.init(params)
    hyper = dict(state.hyperparams, learning_rate=as_float(learning_rate), weight_decay=as_float(weight_decay))
    return state._replace(hyperparams=hyper)


@functools.partial(jax.jit, static_argnums=0)
def _run_epoch(spec: _Spec, state: TrainState, X, y, key, epoch=None) -> tuple[TrainState, dict]:
    """Jitted :func:`train_epoch`; ensembles vmap it over members (own key, own shuffle).

    With ``epoch`` (traced), the epoch's key is ``fold_in(key, epoch)``, derived in the
    program: an eager fold_in per epoch costs ~0.2 ms, a sizeable share of a small epoch.
    """
    if epoch is not None:
        key = jax.random.fold_in(key, epoch)
    member = spec.apply.member if isinstance(spec.apply, Ensemble) else spec.apply
    epoch = functools.partial(
        train_epoch, apply=member.train_logits, loss_fn=spec.loss, tx=spec.tx, batch_size=spec.batch_size
    )
    if not isinstance(spec.apply, Ensemble):
        return epoch(state, X, y, key)
    keys = jax.random.split(key, spec.apply.n_members)
    run = jax.vmap(epoch, in_axes=(_MEMBER_AXES, None, None, 0), out_axes=(_MEMBER_AXES, 0))
    state, metrics = run(state, X, y, keys)
    return state, jax.tree_util.tree_map(jnp.mean, metrics)


# ----------------------------------------------------------------------------------
# user-facing fit
# ----------------------------------------------------------------------------------


def init(
    dataset,
    model: str | nn.Module | Ensemble = "mlp",
    *,
    seed: int = 0,
    widths: Sequence[int] = (64, 64),
    activation: str = "relu",
    dropout: float = 0.0,
    n_members: int = 5,
    n_classes: int | None = None,
    **training_options,
) -> Classifier:
    """The untrained model :func:`fit` would start from: the same architecture, seed and
    initial parameters, without any training. Use it to load saved parameters
    (``clf.replace(flax.serialization.from_bytes(clf.params, blob))``). Training options of
    :func:`fit` (``epochs``, ``learning_rate``, ...) are accepted and ignored."""
    _model_options(model, {k: v for k, v in training_options.items() if k not in _TRAINING_OPTIONS}, "init")
    own = _own_fit(model)
    if own is not None:  # a model with a training of its own (the regressor, laplace)
        return own(
            dataset,
            train_base=init,
            init_only=True,
            seed=seed,
            widths=widths,
            activation=activation,
            dropout=dropout,
            n_members=n_members,
            n_classes=n_classes,
            **training_options,
        )
    X, y = _check_dataset(dataset)
    n_classes = max(int(y.max()) + 1, 2) if n_classes is None else _check_positive_int("n_classes", n_classes)
    apply, _, out_classes = _build(
        model,
        X.shape[1],
        n_classes=n_classes,
        widths=widths,
        activation=activation,
        dropout=dropout,
        n_members=n_members,
    )
    k_init, _ = jax.random.split(jax.random.key(int(seed)))
    return Classifier(apply, apply.init(k_init, X.shape[1]), n_features=X.shape[1], n_classes=out_classes)


_TRAINING_OPTIONS = {
    "epochs",
    "batch_size",
    "learning_rate",
    "init_params",
    "progress",
    "weight_decay",
    "loss",
    "extra",
    "return_state",
    "objective",
    "ct",
    "interval",
    "values",
}


def fit(
    dataset,
    model: str | nn.Module | Ensemble = "mlp",
    *,
    epochs: int = 100,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
    widths: Sequence[int] = (64, 64),
    activation: str = "relu",
    dropout: float = 0.0,
    n_members: int = 5,
    init_params: Any = None,
    progress: bool = False,
    weight_decay: float = 0.0,
    n_classes: int | None = None,
    loss: LossFn = cross_entropy,
    extra: Any = None,
    return_state: bool = False,
    objective: str = "ce",
    ct: Any = None,
    interval: Any = None,
    values: Any = None,  # model="regressor" only
    **options,
) -> Classifier | tuple[Classifier, TrainState]:
    """Train a classifier on ``dataset`` and return it as a :class:`cfx.Classifier`.

    Minimises ``loss`` (default: weighted mean softmax cross-entropy) with AdamW
    (decoupled ``weight_decay``; 0 gives Adam) over shuffled mini-batches; every example
    is used once per epoch (the ragged last batch is padded with zero-weight slots).

    Args:
      dataset: a :class:`cfx.data.Dataset` (``X`` (n, d) finite floats, ``y`` (n,) labels 0..C-1).
      model: ``"mlp"``, ``"ensemble"``, ``"linear"``, ``"jem"``, ``"jem_ensemble"``, ``"regressor"``, ``"laplace"`` (see
        :func:`list_models`; the JEM models default to ``loss=JEMLoss()`` and a replay
        buffer over μ ± 3σ of ``dataset.X`` as ``extra``), any
        ``flax.linen.Module`` mapping (n, d) -> (n, C) logits (a ``train`` keyword, if it has
        one, is set during training, with a ``"dropout"`` rng), or a
        :class:`cfx.models.Ensemble` of any module.
      epochs, batch_size, learning_rate: optimisation settings (batch_size is capped at n).
      seed: PRNG seed for initialisation, shuffling and dropout; same seed -> same params.
      widths, activation, dropout: MLP architecture (ignored for ``"linear"`` and modules).
      n_members: ensemble size M for ``"ensemble"``.
      init_params: warm start from these parameters (or a Classifier's, or a TrainState's);
        shapes must match. The optimiser state starts afresh. A refit with unchanged shapes
        (same model, loss, batch size and number of rows) reuses the compiled training code.
      progress: show a tqdm bar over epochs with the epoch's mean loss (and aux metrics).
      weight_decay: decoupled weight decay (AdamW).
      n_classes: number of classes C; default ``max(max(y) + 1, 2)``.
      loss: ``loss(params, batch, key, *, apply, extra) -> (loss, (new_extra, aux_metrics))``
        (protocol: :mod:`cfx.models.step`). Pass the same (hashable) object on a refit to
        reuse the compiled epoch; a loss with settings is best a frozen dataclass.
      extra: initial ``TrainState.extra`` threaded through the loss (None: nothing). For
        ensembles each leaf has a leading member axis M.
      return_state: also return the final :class:`TrainState` (params, optimiser state,
        step count, extra).
      objective, ct: removed: ``objective="ct"`` with settings ``ct`` raises a ValueError that points
        to :func:`cfx.training.fit` (counterfactual training, the layer above).
      interval, values: ``"regressor"``: target (lo, hi), real targets (cfx.models.regression.fit_interval_target).
      **options: the model's own options (``ModelEntry.options``; ``"laplace"``: ``base``, ``hessian``,
        ``predictive``, ... of :func:`cfx.models.fit_laplace`); others raise TypeError.

    Returns:
      A Classifier whose ``apply_fn`` is deterministic (dropout off), or ``(classifier,
      state)`` with ``return_state=True``. Ensembles give ``log mean_m softmax(f_m)``;
      ``classifier.apply_fn.member_logits(params, x)`` has shape (M, n, C).

    Example::

        clf = cfx.models.fit(train, "mlp", epochs=100, seed=0)
        clf2 = cfx.models.fit(new_train, "mlp", epochs=10, init_params=clf.params)  # no recompile
        clf3, state = cfx.models.fit(train, "mlp", loss=my_loss, extra=buffer, return_state=True)
    """
    options = _model_options(model, options, "fit")
    own = _own_fit(model)
    if own is not None:  # a model with a training of its own (the regressor, laplace: ModelEntry.fit)
        return own(
            dataset,
            train_base=fit,
            interval=interval,
            values=values,
            widths=widths,
            activation=activation,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
            dropout=dropout,
            n_members=n_members,
            init_params=init_params,
            progress=progress,
            weight_decay=weight_decay,
            n_classes=n_classes,
            **options,
        )
    if objective != "ce" or ct is not None:
        _refuse_objective(objective)
    X, y = _check_dataset(dataset)
    epochs = _check_positive_int("epochs", epochs)
    batch_size = _check_positive_int("batch_size", batch_size)
    if not (np.isfinite(as_real("learning_rate", learning_rate)) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive finite float; got {learning_rate!r}")
    if not (np.isfinite(as_real("weight_decay", weight_decay)) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be a finite float >= 0; got {weight_decay!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int; got {type(seed).__name__}")
    loss = _check_loss(loss)
    n_classes = max(int(y.max()) + 1, 2) if n_classes is None else _check_positive_int("n_classes", n_classes)
    if int(y.max()) >= n_classes:
        raise ValueError(f"dataset.y has label {int(y.max())} but n_classes={n_classes}")

    apply, fresh_shapes, out_classes = _build(
        model,
        X.shape[1],
        n_classes=n_classes,
        widths=widths,
        activation=activation,
        dropout=dropout,
        n_members=n_members,
    )
    setup = MODELS.get(model).setup if isinstance(model, str) else None
    if setup is not None:  # the model's own objective (JEM: JEMLoss and a replay buffer)
        loss, extra = setup(loss, extra, X, n_classes=out_classes, apply=apply, seed=int(seed))
    extra = _check_extra(extra, apply)
    n, d = X.shape
    k_init, k_train = jax.random.split(jax.random.key(int(seed)))

    params = apply.init(k_init, d) if init_params is None else _warm_params(init_params, fresh_shapes)
    init_opt = functools.partial(_init_opt_state, learning_rate=learning_rate, weight_decay=weight_decay)
    opt_state = jax.vmap(init_opt)(params) if isinstance(apply, Ensemble) else init_opt(params)
    state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state, extra=extra)

    spec = _Spec(apply=apply, loss=loss, batch_size=min(batch_size, n))
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    label = model if isinstance(model, str) else type(model).__name__
    report = _progress_reporter(label, epochs) if progress else None
    pending = None
    for epoch in range(epochs):
        state, metrics = _run_epoch(spec, state, Xj, yj, k_train, epoch)
        if pending is not None:  # read the previous epoch's metrics while this one runs
            _check_finite_metrics(label, *pending)
        pending = (epoch, metrics)
        if report is not None:  # host sync only when someone is watching
            report(epoch, metrics)
    _check_finite_metrics(label, *pending)
    if report is not None:
        report(None, None)
    clf = Classifier(apply, state.params, n_features=d, n_classes=out_classes)
    return (clf, state) if return_state else clf


def _progress_reporter(label: str, epochs: int) -> Callable[[int | None, dict | None], None]:
    """``fit(progress=True)``'s rule, as ``cfx run``'s: a bar on a terminal or in a notebook,
    plain lines elsewhere (a log, CI) — one per tenth of the epochs, never carriage returns.
    ``report(None, None)`` closes it."""

    def text(metrics):
        return ", ".join(f"{k} {float(np.mean(v)):.4f}" for k, v in metrics.items())

    stream = sys.stderr
    if interactive(stream) or "ipykernel" in sys.modules:  # a notebook's tqdm is a widget
        bar = tqdm(total=epochs, desc=f"fit {label}", leave=False)

        def report(epoch, metrics):
            if epoch is None:
                bar.close()
                return
            bar.update(1)
            bar.set_postfix_str(text(metrics))

        return report
    every = max(1, epochs // 10)

    def report(epoch, metrics):
        if epoch is not None and ((epoch + 1) % every == 0 or epoch + 1 == epochs):
            print(f"fit {label}: epoch {epoch + 1}/{epochs}, {text(metrics)}", file=stream, flush=True)

    return report


def _check_finite_metrics(label: str, epoch: int, metrics: dict) -> None:
    """Stop a diverged training with the epoch it diverged at, instead of returning NaN weights."""
    bad = [k for k, v in metrics.items() if not np.all(np.isfinite(np.asarray(v)))]
    if bad:
        raise FloatingPointError(
            f"fit {label}: the training {', '.join(bad)} became non-finite at epoch {epoch}: lower learning_rate, "
            "standardise the features, or check the loss (a JEM's SGLD settings)"
        )


def _refuse_objective(objective) -> None:
    """``objective="ct"`` / ``ct=`` (removed): counterfactual training is :func:`cfx.training.fit`,
    the layer above this one, which this layer does not call."""
    if objective in ("ce", "ct"):
        raise ValueError(
            "cfx.models.fit(..., objective='ct', ct=...) moved to the layer above: counterfactual "
            "training is cfx.training.fit(dataset, model, ct=CTConfig(...)) (.classifier is the "
            "Classifier)"
        )
    raise ValueError(f"objective must be 'ce' (counterfactual training: cfx.training.fit); got {objective!r}")


def accuracy(classifier: Classifier, dataset, y=None) -> float:
    """Share of examples whose predicted label equals the true one: mean(argmax f(x) == y), on the
    host (registered as the metric ``accuracy`` by :mod:`cfx.evaluation.population`).

    ``accuracy(clf, dataset)`` or ``accuracy(clf, X, y)``.
    """
    X, labels = (dataset.X, dataset.y) if y is None else (dataset, y)
    X, labels = np.asarray(X, float_dtype()), np.asarray(labels)
    if X.shape[0] == 0:
        raise ValueError("accuracy needs at least one example")
    return float(accuracy_of(np.asarray(classifier.predict(X)), labels))


def accuracy_of(pred, y):
    """mean(ŷ == y) of predicted labels ``pred`` and true labels ``y``: cfx's one accuracy
    formula, on numpy arrays (float64) or traced ones (inside a jitted metric)."""
    return (pred == y).mean()


def fit_laplace(train, base: str = "mlp", **options) -> Classifier:
    """``fit(train, "laplace", base=base, **options)``: train ``base`` and return its last-layer
    Laplace approximation (:func:`cfx.models.laplace`); what a config's ``model: laplace`` builds.
    Options: Laplace's own (``hessian``, ``prior_precision``, ``predictive``, ``n_samples``,
    ``last_layer``, ``marglik_steps``, ``marglik_learning_rate``) and :func:`fit`'s for the base."""
    return fit(train, "laplace", base=base, **options)

"""``fit`` (also ``fit_ct``): train a classifier with counterfactual training (or its baseline / ablations).

``cfx.training.fit(train, model, ct=CTConfig(...))`` (``fit_ct`` is the same function; the layer
below, ``cfx.models.fit``, does not call it). The model, optimiser (AdamW with
injected hyperparameters), initialisation and seeds are those of :func:`cfx.models.fit`, so
``variant="baseline"`` is exactly a plain ``cfx.models.fit`` run.

Bad input raises before anything is compiled: negative λ and bad settings (in
:class:`CTConfig`), a search generator that cannot run on the data (its ``validate``), protected indices out of range, an ensemble (not supported), a classifier
whose gradients are not finite at initialisation. ``n_ce`` above the training-set size, or above
C × the smallest class's rows (its share per class would not fit), is capped, with a logged
warning and ``CTFit.info["n_ce_capped"]``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import warnings
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from cfx._validate import as_real, float_dtype
from cfx.classifier import Classifier
from cfx.constraints import MUTABILITY, NONE, Constraints
from cfx.generators.base import Generator
from cfx.models import train as _train
from cfx.models.ensemble import Ensemble
from cfx.models.registry import MODELS
from cfx.models.losses import weighted_cross_entropy
from cfx.models.step import TrainState
from cfx.training.config import CTConfig
from cfx.training.epoch import EpochSpec, TrainingData, ct_epoch
from cfx.training.loss import Counterfactuals, CTWeights

log = logging.getLogger("cfx.training")


@dataclasses.dataclass
class CTFit:
    """What :func:`fit_ct` returns: the classifier, the final train state, per-epoch metrics
    (``history``: name -> (epochs,) array), ``info`` (n_ce used, whether it was capped,
    the resolved constraints' mutability, the variant) and the last epoch's counterfactuals
    (None for the baseline)."""

    classifier: Classifier
    state: TrainState
    history: dict
    info: dict
    counterfactuals: Counterfactuals | None = None


def search_constraints(dataset, ct: CTConfig) -> Constraints:
    """The constraints of the CT search: the schema's bounds and one-hot groups, its
    mutability (if ``schema_mutability``), ``protected`` features immutable, and the box
    μ ± domain_sd·σ of the training data (widened to the data's range with
    ``domain_covers_data``; or the fixed ``domain``) intersected with the schema's bounds. Without ``schema_constraints``:
    only the mutability and the box, on every feature (the reference's search data)."""
    d = dataset.X.shape[1]
    ct.check_features(d)
    schema = dataset.schema
    mutability = list(schema.mutability) if ct.schema_mutability else ["both"] * d
    for i in ct.protected:
        mutability[i] = "none"
    lower, upper = np.asarray(schema.lower, float_dtype()), np.asarray(schema.upper, float_dtype())
    if not ct.schema_constraints:
        lower, upper = np.full(d, -np.inf, float_dtype()), np.full(d, np.inf, float_dtype())
    if ct.domain is not None:  # a fixed box replaces the inferred one
        lower = np.maximum(lower, np.full(d, ct.domain[0], float_dtype()))
        upper = np.minimum(upper, np.full(d, ct.domain[1], float_dtype()))
    elif ct.domain_sd is not None:
        X = dataset.X
        mean, sd = X.mean(0), X.std(0, ddof=1 if ct.domain_covers_data else 0)  # Julia's std is the sample one
        lo, hi = mean - ct.domain_sd * sd, mean + ct.domain_sd * sd
        if ct.domain_covers_data:
            lo, hi = np.minimum(lo, X.min(0)), np.maximum(hi, X.max(0))
        box = np.ones(d, bool)
        if ct.schema_constraints:  # one-hot columns keep [0, 1]
            box[[i for g in schema.categorical_groups for i in g]] = False
        lower = np.where(box, np.maximum(lower, lo), lower)
        upper = np.where(box, np.minimum(upper, hi), upper)
    if not ct.schema_constraints:
        return Constraints(mutability=mutability, lower=lower, upper=upper)
    # start from the schema's own constraints so whatever else it declares carries over
    return dataclasses.replace(schema.constraints(), mutability=mutability, lower=lower, upper=upper)


def _ct_generator(ct: CTConfig) -> Generator:
    """``cfx.training.ct_generator(ct)`` of cfx 0.1 (deprecated; ``cfx.training`` warns): ``ct.generator``."""
    return ct.generator


@functools.partial(jax.jit, static_argnums=0)
def _gradients_finite(apply, params, X, y) -> jax.Array:
    w = jnp.ones((X.shape[0],), float_dtype())
    grads = jax.grad(lambda p: weighted_cross_entropy(apply.train_logits(p, X, None), y, w))(params)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree_util.tree_leaves(grads)]))


def _check_gradients(apply, params, X, y) -> None:
    """The classifier must give finite gradients (checked on a few rows; compiled once per
    model, as the eager check cost ~70 ms per fit)."""
    rows = slice(0, min(16, X.shape[0]))
    if not bool(_gradients_finite(apply, params, X[rows], y[rows])):
        raise ValueError(
            "model: the classifier's gradients are not finite at initialisation (check the model's "
            "forward pass and the data scale); counterfactual training needs finite gradients"
        )


def _check_ct_trainable(model) -> None:
    """CT trains one network with its own loss: a registered model that is an ensemble, energy-based or
    trained its own way (``ModelEntry.ct_trainable``) is refused, naming those it can train."""
    if isinstance(model, str) and not MODELS.get(model).ct_trainable:
        can = [name for name, entry in MODELS.items() if entry.ct_trainable]
        raise ValueError(
            f"model: counterfactual training cannot train {model!r}: it trains one network by a loss "
            f"(not ensembles, energy-based models or models trained their own way): {sorted(can)} or "
            "any flax module"
        )


def fit(
    dataset,
    model: Any = "mlp",
    *,
    ct: CTConfig | None = None,
    epochs: int = 100,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
    widths: Sequence[int] = (64, 64),
    activation: str = "relu",
    dropout: float = 0.0,
    init_params: Any = None,
    progress: bool = False,
    weight_decay: float = 0.0,
    n_classes: int | None = None,
    n_members: int = 5,
) -> CTFit:
    """Counterfactual training of ``model`` on ``dataset`` (options as :func:`cfx.models.fit`).

    Each epoch is one compiled call (:func:`cfx.training.epoch.ct_epoch`): the search of
    ``ct.generator`` (ECCo by default) for ``ct.n_ce`` factuals with the current model, then the CT train steps over all
    mini-batches. ``variant="baseline"`` trains with plain cross-entropy.

    Example::

        out = cfx.training.fit(train, "mlp", ct=cfx.training.CTConfig(protected=(0,)), epochs=50)
        out.classifier, out.history["div"], out.info["n_ce"]
    """
    ct = CTConfig() if ct is None else ct
    if not isinstance(ct, CTConfig):
        raise TypeError(f"ct must be a cfx.training.CTConfig; got {type(ct).__name__}")
    options = dict(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        widths=widths,
        activation=activation,
        dropout=dropout,
        init_params=init_params,
        progress=progress,
        weight_decay=weight_decay,
        n_classes=n_classes,
        n_members=n_members,
    )
    X, y = _train._check_dataset(dataset)
    constraints = search_constraints(dataset, ct)  # protected indices checked here
    n, d = X.shape
    counts = np.bincount(np.asarray(y, np.int64))
    counts = counts[counts > 0]
    cap = min(n, len(counts) * int(counts.min()))  # each class's share of n_ce must fit in the class
    info = {
        "variant": ct.variant,
        "n_ce": min(ct.n_ce, cap),
        "n_ce_requested": ct.n_ce,
        "n_ce_capped": ct.n_ce > cap,
        "mutability": list(constraints.mutability),
        "weights": list(ct.weights()),
        "immutable": [i for i, m in enumerate(constraints.mutability) if MUTABILITY.index(m) == NONE],
    }
    if not ct.searches:
        clf, state = _train.fit(dataset, model, return_state=True, **options)
        return CTFit(clf, state, {}, info)
    if ct.n_ce > cap:
        msg = (
            f"CTConfig.n_ce={ct.n_ce} exceeds the {n} training rows; using n_ce={n}"
            if cap == n
            else f"CTConfig.n_ce={ct.n_ce}: its share per class exceeds the smallest class ({int(counts.min())} of {n} "
            f"training rows, {len(counts)} classes); using n_ce={cap}"
        )
        log.warning(msg)
        warnings.warn(msg, stacklevel=2)
    epochs = _train._check_positive_int("epochs", epochs)
    batch_size = _train._check_positive_int("batch_size", batch_size)
    if not (np.isfinite(as_real("learning_rate", learning_rate)) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive finite float; got {learning_rate!r}")
    n_classes = max(int(y.max()) + 1, 2) if n_classes is None else _train._check_positive_int("n_classes", n_classes)
    _check_ct_trainable(model)
    gen = ct.generator
    gen.validate(1, d, n_classes)  # the search's own checks, before anything compiles
    apply, fresh_shapes, out_classes = _train._build(
        model, d, n_classes=n_classes, widths=widths, activation=activation, dropout=dropout, n_members=n_members
    )
    if isinstance(apply, Ensemble):
        raise ValueError(
            "model: counterfactual training supports single models (mlp, linear, a flax module), not ensembles"
        )
    k_init, k_train = jax.random.split(jax.random.key(int(seed)))
    params = apply.init(k_init, d) if init_params is None else _train._warm_params(init_params, fresh_shapes)
    _check_gradients(apply, params, jnp.asarray(X), jnp.asarray(y))
    opt_state = _train._init_opt_state(params, learning_rate, weight_decay)
    state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state, extra=None)

    resolved = constraints.resolve(d)
    spec = EpochSpec(
        apply=apply,
        n_features=d,
        n_classes=out_classes,
        batch_size=min(batch_size, n),
        n_ce=info["n_ce"],
        max_steps=ct.max_steps,
        epsilon=ct.epsilon,
        tx=_train._TX,
    )
    data = TrainingData.create(X, y, out_classes)
    weights = CTWeights.create(ct.weights(), [MUTABILITY.index(m) for m in constraints.mutability])
    if out_classes != n_classes:
        gen.validate(1, d, out_classes)
    history: dict[str, list] = {}
    label = model if isinstance(model, str) else type(model).__name__
    bar = tqdm(range(epochs), desc=f"fit {label} ({ct.variant})", disable=not progress, leave=False)

    def record(epoch: int, metrics: dict) -> None:
        metrics = jax.device_get(metrics)
        if not metrics["finite"]:
            raise FloatingPointError(
                f"model: non-finite gradients in counterfactual training at epoch {epoch} "
                f"(loss {float(metrics['loss']):.4g}); lower the learning rate or the λ"
            )
        for k, v in metrics.items():
            history.setdefault(k, []).append(float(v))
        if progress:
            bar.set_postfix({k: f"{float(metrics[k]):.3f}" for k in ("loss", "div", "adv", "mature_share")})

    pending = None
    for epoch in bar:
        state, metrics, cfs = ct_epoch(state, data, k_train, weights, gen, resolved, spec=spec, epoch=epoch)
        if pending is not None:  # read the previous epoch's metrics while this one runs
            record(*pending)
        pending = (epoch, metrics)
    record(*pending)
    clf = Classifier(apply, state.params, n_features=d, n_classes=out_classes)
    return CTFit(clf, state, {k: np.asarray(v) for k, v in history.items()}, info, cfs)


fit_ct = fit  # the same function under its first name

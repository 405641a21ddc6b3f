"""The model registry: every name ``cfx.models.fit``, ``cfx.training.fit`` and configs accept.

An entry says how to build the model, how it trains and what it is:

    build(n_classes=, widths=, activation=, dropout=, n_members=) -> ModuleApply | Ensemble
    setup(loss, extra, X, *, n_classes, apply, seed) -> (loss, extra)    # its default objective
    fit(dataset, *, train_base, init_only=False, **options) -> Classifier  # its own training, if any
    energy_based, ensemble                                               # what it is

Add a model: one :func:`register_model` call (docs/extending.md). Counterfactual training
trains every entry that is one network trained by a loss (not an ensemble, not energy-based,
no training of its own): :meth:`ModelEntry.ct_trainable`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import numpy as np

from cfx.models.ensemble import Ensemble
from cfx.models.jem import JEMLoss
from cfx.models.laplace import LAPLACE_OPTIONS, check_laplace_options
from cfx.models.laplace import fit_entry as laplace_fit
from cfx.models.losses import cross_entropy
from cfx.models.mlp import MLP, ModuleApply
from cfx.models.regression import fit_interval_target
from cfx.registry import Registry


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A registered model.

    Args:
      build: ``build(*, n_classes, widths, activation, dropout, n_members) -> ModuleApply | Ensemble``
        (``widths`` already checked: a tuple of ints >= 1); options it has no use for are ignored.
      description: one line for ``cfx list models``.
      setup: ``setup(loss, extra, X, *, n_classes, apply, seed) -> (loss, extra)``: the objective it
        trains with when the caller gives the default loss (JEM: :class:`JEMLoss` and a replay
        buffer); None: the caller's loss, unchanged.
      fit: a model with a training of its own (not a loss over mini-batches of the classification
        data): ``fit(dataset, *, train_base, init_only=False, **options) -> Classifier`` replaces
        :func:`cfx.models.fit`'s loop (``train_base`` is :func:`cfx.models.fit`, or
        :func:`cfx.models.init` with ``init_only``, for a model that wraps another, as laplace
        does, without importing the layer that trains); None: trained by that loop.
      energy_based: trained as an energy-based model (its logits define p(x)).
      ensemble: several members; ``build`` returns a :class:`cfx.models.Ensemble`.
      options: keyword options of its own ``fit`` beyond :func:`cfx.models.fit`'s (laplace's
        ``base``, ``hessian``, ...): ``fit`` / ``init`` and configs accept them for this model only.
      check: ``check(**options)`` raises ValueError naming a bad option before anything trains.
    """

    build: Callable[..., Any]
    description: str = ""
    setup: Callable[..., tuple[Any, Any]] | None = None
    fit: Callable[..., Any] | None = None
    energy_based: bool = False
    ensemble: bool = False
    options: tuple[str, ...] = ()
    check: Callable[..., None] | None = None

    @property
    def ct_trainable(self) -> bool:
        """Whether counterfactual training can train it: one network, trained by a plain loss."""
        return not (self.ensemble or self.energy_based or self.fit is not None)


def _check(name: str, entry: Any) -> None:
    if not isinstance(entry, ModelEntry):
        raise TypeError(f"register_model({name!r}, ...) needs a cfx.models.ModelEntry; got {type(entry).__name__}")


def _mlp(*, n_classes, widths, activation, dropout, **_):
    return ModuleApply(MLP(widths=widths, n_classes=n_classes, activation=activation, dropout=float(dropout)))


def _linear(*, n_classes, **_):
    return ModuleApply(MLP(widths=(), n_classes=n_classes))


def _ensemble(*, n_classes, widths, activation, dropout, n_members, **_):
    if isinstance(n_members, bool) or not isinstance(n_members, (int, np.integer)) or n_members < 1:
        raise ValueError(f"n_members must be an int >= 1; got {n_members!r}")
    mlp = MLP(widths=widths, n_classes=n_classes, activation=activation, dropout=float(dropout))
    return Ensemble(mlp, n_members=int(n_members))


def jem_setup(loss, extra, X, *, n_classes: int, apply, seed: int):
    """The JEM models' defaults: :class:`JEMLoss` in place of plain CE, and a fresh replay
    buffer over μ ± 3σ of X unless ``extra`` is given (ensembles: one per member)."""
    if loss is cross_entropy:
        loss = JEMLoss()
    if extra is not None:
        return loss, extra
    if not isinstance(loss, JEMLoss):
        raise ValueError("a JEM model with a custom loss needs its initial extra (replay buffer) passed to fit")
    key = jax.random.fold_in(jax.random.key(seed), 0x4A454D)  # own stream: init/shuffle keys unchanged
    if isinstance(apply, Ensemble):
        keys = jax.random.split(key, apply.n_members)
        return loss, jax.vmap(lambda k: loss.init_buffer(X, n_classes, k))(keys)
    return loss, loss.init_buffer(X, n_classes, key)


#: name -> :class:`ModelEntry`; ``cfx.models.list_models()`` is ``MODELS.describe()``.
MODELS: Registry[ModelEntry] = Registry("model", check=_check)
MODELS.register(
    "mlp", ModelEntry(_mlp, "flax multi-layer perceptron: widths, activation (relu, swish, tanh, ...), dropout")
)
MODELS.register(
    "ensemble",
    ModelEntry(
        _ensemble, "deep ensemble of n_members MLPs with stacked parameters; probabilities averaged", ensemble=True
    ),
)
MODELS.register(
    "linear",
    ModelEntry(_linear, "logistic regression (an MLP with no hidden layers), as in the recourse-dynamics experiments"),
)
MODELS.register(
    "jem",
    ModelEntry(
        _mlp,
        "joint energy-based model: an MLP trained with the JEM loss (CE + energy terms, SGLD replay buffer)",
        setup=jem_setup,
        energy_based=True,
    ),
)
MODELS.register(
    "jem_ensemble",
    ModelEntry(
        _ensemble,
        "deep ensemble of n_members JEM MLPs, each with its own SGLD replay buffer",
        setup=jem_setup,
        energy_based=True,
        ensemble=True,
    ),
)
MODELS.register(
    "regressor",
    ModelEntry(
        _mlp,
        "one-output MLP fitted by squared error to values=, served as the target interval=(lo, hi)",
        fit=fit_interval_target,
    ),
)
MODELS.register(
    "laplace",
    ModelEntry(
        _mlp,
        "last-layer Laplace approximation of a trained base (mlp or linear): GGN posterior (hessian full, diag or "
        "kfac), prior precision by evidence, probit or mc predictive",
        fit=laplace_fit,
        options=("base", *LAPLACE_OPTIONS),
        check=check_laplace_options,
    ),
)


def register_model(name: str, entry: ModelEntry, *, replace: bool = False) -> ModelEntry:
    """Make ``name`` a model of :func:`cfx.models.fit`, :func:`cfx.models.init`, CT and every config.

    Example::

        cfx.models.register_model("wide", cfx.models.ModelEntry(
            lambda *, n_classes, **_: cfx.models.ModuleApply(cfx.models.MLP(widths=(256,), n_classes=n_classes)),
            "one hidden layer of 256 units"))
        clf = cfx.models.fit(train, "wide", epochs=10)
    """
    return MODELS.register(name, entry, replace=replace)


__all__ = ["MODELS", "ModelEntry", "jem_setup", "register_model"]

"""Models: flax MLPs, deep ensembles, and the train step that turns them into Classifiers.

``cfx.models.fit(train, "mlp" | "ensemble" | "linear" | "jem" | "jem_ensemble" | "laplace" | flax_module, ..., loss=...)
-> cfx.Classifier``; model names are entries of the registry ``MODELS`` (add one: ``register_model``); ``calibrate`` (split conformal), ``fit_vae`` (latent search). Models from
outside JAX: ``from_sklearn(estimator)`` (an exact translation) and
``from_predict_proba(fn, n_features, n_classes)`` (a black box). A Bayesian last layer:
``laplace(clf, train)``; regression models and their target intervals: ``fit_regressor``,
``Regressor.within(lo, hi)`` (docs/models.md).
Training is one pure ``train_step(state, batch, key, *, apply, loss_fn, tx)`` scanned over
mini-batches; a new training objective is a new *loss* (:mod:`cfx.models.losses`).
"""

from cfx.models.conformal import ConformalClassifier, calibrate, conformal_quantile, smooth_set_size
from cfx.models.external import from_predict_proba, from_sklearn
from cfx.models.ensemble import Ensemble, average_probability_logits, is_ensemble, member_logits
from cfx.models.jem import JEMLoss
from cfx.models.laplace import LaplaceApply, expected_calibration_error, laplace, last_layer_ggn
from cfx.models.jem_reference import ReferenceJEMLoss
from cfx.models.losses import batch_loss, cross_entropy, weighted_cross_entropy, weighted_mean
from cfx.models.mlp import ACTIVATIONS, MLP, ModuleApply
from cfx.models.step import Batch, LossFn, TrainState, shuffled_batches, train_epoch, train_step
from cfx.models.regression import IntervalLogits, Regressor, fit_regressor, interval_labels, is_regression
from cfx.models.registry import MODELS, ModelEntry, register_model
from cfx.models.schedule import fit_scheduled, member_rows
from cfx.models.train import accuracy, fit, fit_laplace, init, list_models
from cfx.models.vae import VAE, ELBO, fit_vae

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "MODELS",
    "ModelEntry",
    "register_model",
    "Batch",
    "ConformalClassifier",
    "ELBO",
    "VAE",
    "calibrate",
    "conformal_quantile",
    "fit_vae",
    "smooth_set_size",
    "Ensemble",
    "JEMLoss",
    "IntervalLogits",
    "LaplaceApply",
    "Regressor",
    "fit_regressor",
    "interval_labels",
    "is_regression",
    "expected_calibration_error",
    "laplace",
    "fit_laplace",
    "last_layer_ggn",
    "ReferenceJEMLoss",
    "LossFn",
    "ModuleApply",
    "TrainState",
    "accuracy",
    "average_probability_logits",
    "batch_loss",
    "cross_entropy",
    "fit",
    "fit_scheduled",
    "member_rows",
    "from_predict_proba",
    "from_sklearn",
    "init",
    "is_ensemble",
    "list_models",
    "member_logits",
    "shuffled_batches",
    "train_epoch",
    "train_step",
    "weighted_cross_entropy",
    "weighted_mean",
]

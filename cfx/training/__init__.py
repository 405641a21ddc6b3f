"""Counterfactual training (CT, SPEC §5): teach a model plausible, actionable explanations.

- :func:`ct_loss` / :func:`ct_train_step`: the CT objective and its pure, jitted train step;
- :func:`counterfactual_step`: one epoch's batched search (ECCo by default) (mature + nascent counterfactuals);
- :func:`ct_epoch`: the counterfactual step plus every train step of an epoch, one compiled call;
- :func:`fit`: counterfactual training of a model (``fit_ct`` is the same function);
- :mod:`cfx.training.evaluation`: IP, IP*, cost, validity, IG sensitivity, (robust) accuracy.

Example::

    clf = cfx.training.fit(train, "mlp", ct=cfx.training.CTConfig(protected=(0,)), epochs=50).classifier
"""

from cfx.training.config import VARIANTS, CTConfig
from cfx.training.epoch import EpochSpec, TrainingData, counterfactual_step, ct_epoch, split
from cfx import _deprecated
from cfx.training.train import CTFit, fit, fit_ct, search_constraints
from cfx.training.loss import Counterfactuals, CTWeights, ct_loss, ct_train_step, protect

__all__ = [
    "VARIANTS",
    "CTConfig",
    "CTFit",
    "CTWeights",
    "Counterfactuals",
    "EpochSpec",
    "TrainingData",
    "counterfactual_step",
    "ct_epoch",
    "ct_loss",
    "ct_train_step",
    "fit",
    "fit_ct",
    "protect",
    "search_constraints",
    "split",
]


def __getattr__(name):
    # cfx.training.generator(ct), then ct_generator(ct), gave the ECCo of a CTConfig's flat fields;
    # CTConfig now names its search generator (0.2)
    if name in ("generator", "ct_generator"):
        from cfx.training.train import _ct_generator

        _deprecated.warn(f"cfx.training.{name}(ct)", "read ct.generator (CTConfig names its search generator)")
        return _ct_generator
    raise AttributeError(f"module 'cfx.training' has no attribute {name!r}")

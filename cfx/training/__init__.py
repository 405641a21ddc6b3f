"""Counterfactual training (CT, SPEC §5): teach a model plausible, actionable explanations.

- :func:`ct_loss` / :func:`ct_train_step`: the CT objective and its pure, jitted train step;
- :func:`counterfactual_step`: one epoch's batched ECCo search (mature + nascent counterfactuals);
- :func:`ct_epoch`: the counterfactual step plus every train step of an epoch, one compiled call;
- :func:`fit_ct` (also ``cfx.models.fit(..., objective="ct", ct=CTConfig(...))``);
- :mod:`cfx.training.evaluation`: IP, IP*, cost, validity, IG sensitivity, (robust) accuracy.

Example::

    clf = cfx.models.fit(train, "mlp", objective="ct", ct=cfx.training.CTConfig(protected=(0,)), epochs=50)
"""

from cfx.training.config import VARIANTS, CTConfig
from cfx.training.epoch import EpochSpec, TrainingData, counterfactual_step, ct_epoch, split, trace_count
from cfx.training.fit import CTFit, fit_ct, generator, search_constraints
from cfx.training.loss import Counterfactuals, CTWeights, ct_loss, ct_train_step, protect
from cfx.models.train import register_objective

register_objective("ct", fit_ct)  # cfx.models.fit(..., objective="ct") without models importing this layer

__all__ = [
    "VARIANTS", "CTConfig", "CTFit", "CTWeights", "Counterfactuals", "EpochSpec", "TrainingData", "counterfactual_step",
    "ct_epoch", "ct_loss", "ct_train_step", "fit_ct", "generator", "protect", "search_constraints", "split",
    "trace_count",
]

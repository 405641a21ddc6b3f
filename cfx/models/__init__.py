"""Models: flax MLPs, deep ensembles and the training loop that turns them into Classifiers.

``cfx.models.fit(train, "mlp" | "ensemble" | "linear" | flax_module, ...) -> cfx.Classifier``.
"""

from cfx.models.ensemble import Ensemble, average_probability_logits, is_ensemble, member_logits
from cfx.models.mlp import ACTIVATIONS, MLP, ModuleApply
from cfx.models.train import accuracy, batch_loss, fit, list_models, trace_count

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "Ensemble",
    "ModuleApply",
    "accuracy",
    "average_probability_logits",
    "batch_loss",
    "fit",
    "is_ensemble",
    "list_models",
    "member_logits",
    "trace_count",
]

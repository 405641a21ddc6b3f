"""cfx: counterfactual explanations, algorithmic recourse and counterfactual training in JAX.

    import jax, cfx
    train, test = cfx.data.train_test(cfx.data.load("moons", n=2000))
    clf = cfx.models.fit(train)
    res = cfx.generate(cfx.generators.Generic(), clf, test.X[:100], target=1, key=jax.random.key(0))
    cfx.evaluate(res, clf, data=train)["mean"]
"""

from cfx import data, evaluation, generators, losses, models, sampling
from cfx import training  # registers objective="ct" with cfx.models.fit
from cfx.classifier import Classifier
from cfx.constraints import Constraints
from cfx.evaluation import evaluate
from cfx.explain import explain
from cfx.io import load, save
from cfx.result import OUTCOMES, CounterfactualResult
from cfx import search
from cfx.search import generate
from cfx.tracks import Track, track_last_within, track_path

__version__ = "0.1.0"


def __getattr__(name):
    """The experiment layer (pandas, matplotlib) loads on first use, not with ``import cfx``."""
    if name in ("experiments", "plotting", "dynamics", "probing"):
        import importlib

        return importlib.import_module(f"cfx.{name}")
    raise AttributeError(f"module 'cfx' has no attribute {name!r}")

__all__ = [
    "Classifier", "Constraints", "CounterfactualResult", "OUTCOMES", "Track", "data", "evaluate", "evaluation", "explain",
    "generate", "generators", "load", "losses", "models", "sampling", "save", "search", "track_last_within",
    "track_path", "training",
]

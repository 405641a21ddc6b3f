"""cfx: counterfactual explanations, algorithmic recourse and counterfactual training in JAX.

import jax, cfx
train, test = cfx.data.train_test(cfx.data.load("moons", n=2000))
clf = cfx.models.fit(train)
res = cfx.generate(cfx.generators.Generic(), clf, test.X[:100], target=1, key=jax.random.key(0))
cfx.evaluate(res, clf, data=train)["mean"]
"""

from cfx import data, evaluation, generators, models, sampling, terms
from cfx import training  # counterfactual training: cfx.training.fit
from cfx.classifier import Classifier
from cfx.constraints import Constraints
from cfx.evaluation import evaluate
from cfx.explain import explain
from cfx.io import load, save
from cfx.intervals import generate_within
from cfx import search
from cfx.search import OUTCOMES, CounterfactualResult, Track, generate, track_last_within, track_path

__version__ = "0.1.0"


# modules that became private parts of cfx.search (0.2): ``cfx.<old>`` still works one release, with a warning
_MOVED = {
    "result": "cfx.search._result",
    "tracks": "cfx.search._tracks",
    "runtime": "cfx.search._runtime",
    "checks": "cfx.search._checks",
    "distributed": "cfx.search._distributed",
    "compile_cache": "cfx.search._compile_cache",
    "convergence": "cfx.search._convergence",
    "reductions": "cfx._reductions",
}


def __getattr__(name):
    """The experiment layer (pandas, matplotlib) loads on first use, not with ``import cfx``."""
    import importlib

    if name in ("experiments", "plotting", "dynamics", "probing", "global_rules"):
        return importlib.import_module(f"cfx.{name}")
    if name in _MOVED:
        import warnings

        warnings.warn(
            f"cfx.{name} is private since cfx 0.2 (now {_MOVED[name]}): use the public names in "
            "cfx.search or cfx (see CHANGELOG.md)",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(_MOVED[name])
    if name == "losses":  # the objective's pieces are terms (0.2)
        from cfx import _deprecated

        _deprecated.warn("cfx.losses", "use cfx.terms (the objective's pieces are terms)")
        return importlib.import_module("cfx.losses")
    if name == "explain_global":  # pandas tables: loaded on first use
        from cfx.global_rules import explain_global

        return explain_global
    raise AttributeError(f"module 'cfx' has no attribute {name!r}")


__all__ = [
    "Classifier",
    "Constraints",
    "CounterfactualResult",
    "OUTCOMES",
    "Track",
    "data",
    "evaluate",
    "evaluation",
    "explain",
    "generate",
    "generate_within",
    "generators",
    "load",
    "models",
    "sampling",
    "save",
    "search",
    "terms",
    "track_last_within",
    "track_path",
    "training",
]

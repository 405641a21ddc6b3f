"""cfx: counterfactual explanations, algorithmic recourse and counterfactual training in JAX."""

from cfx import generators, losses
from cfx.classifier import Classifier
from cfx.constraints import Constraints
from cfx.result import CounterfactualResult
from cfx.search import generate

__version__ = "0.1.0"

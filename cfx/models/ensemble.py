"""Deep ensembles: M members with stacked parameters, evaluated with one ``vmap``.

The ensemble's logits are ``log( (1/M) Σ_m softmax(f_m(x)) )``, so ``softmax`` of them
is exactly the averaged member probability (SPEC §3). ``combine="logits"`` instead gives
``(1/M) Σ_m f_m(x)``, the member-averaged logits, as ECCCo.jl's ``ConformalModel`` does. Generators that need per-member
quantities (ClaPROAR, ECCCo's averaged logits) use :func:`member_logits`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cfx.classifier import Classifier, two_class_logits
from cfx.models.mlp import ModuleApply


#: How an :class:`Ensemble` combines its members: averaged probabilities (default) or logits.
COMBINE = ("probabilities", "logits")


def average_probability_logits(member_logits: jax.Array) -> jax.Array:
    """``log mean_m softmax(member_logits[m])`` over axis 0, computed stably.

    ``logsumexp_m log_softmax(f_m) − log M``: its softmax is the mean member probability
    (the result is already normalised, so softmax leaves it unchanged).
    """
    m = member_logits.shape[0]
    return jax.nn.logsumexp(jax.nn.log_softmax(member_logits, axis=-1), axis=0) - jnp.log(m)


@dataclasses.dataclass(frozen=True)
class Ensemble:
    """A deep ensemble of ``n_members`` copies of one flax ``module`` (independent parameters).

    Parameters are the member variables stacked on a new leading axis of size M, made by
    ``vmap`` over init keys. Hashable, so it can serve as a Classifier's static ``apply_fn``.

    Example::

        ens = Ensemble(MLP(widths=(32, 32)), n_members=5)
        params = ens.init(jax.random.key(0), n_features=2)  # leaves (5, ...)
        ens.member_logits(params, x)                         # (5, n, C)
        ens(params, x)                                       # (n, C) = log mean softmax
    """

    module: nn.Module
    n_members: int = 5
    combine: str = "probabilities"

    def __post_init__(self):
        if not isinstance(self.n_members, int) or self.n_members < 1:
            raise ValueError(f"n_members must be a positive int; got {self.n_members!r}")
        if self.combine not in COMBINE:
            raise ValueError(f"combine must be one of {COMBINE}; got {self.combine!r}")

    @property
    def member(self) -> ModuleApply:
        """One member's apply function (the shared module)."""
        return ModuleApply(self.module)

    def init(self, key: jax.Array, n_features: int) -> Any:
        """Stacked variables: ``vmap`` of ``module.init`` over ``n_members`` split keys."""
        keys = jax.random.split(key, self.n_members)
        return jax.vmap(lambda k: self.member.init(k, n_features))(keys)

    def member_logits(self, params: Any, x: jax.Array) -> jax.Array:
        """Per-member logits: x (n, d) -> (M, n, C); x (d,) -> (M, C)."""
        single = x.ndim == 1
        xb = x[None] if single else x
        out = jax.vmap(self.member, in_axes=(0, None))(params, xb)
        out = two_class_logits(out)  # single-logit binary members -> [0, f], as Classifier does
        return out[:, 0] if single else out

    def __call__(self, params: Any, x: jax.Array) -> jax.Array:
        """Ensemble logits (n, C): ``log mean_m softmax(f_m(x))`` (``combine="logits"``: ``mean_m f_m(x)``)."""
        if self.combine == "logits":
            return jnp.mean(self.member_logits(params, x), axis=0)
        return average_probability_logits(self.member_logits(params, x))


def is_ensemble(classifier: Classifier) -> bool:
    """Whether ``classifier`` exposes per-member logits (its ``apply_fn`` has ``member_logits``)."""
    return callable(getattr(classifier.apply_fn, "member_logits", None))


def member_logits(classifier: Classifier, x: jax.Array) -> jax.Array:
    """Per-member logits of any classifier: x (n, d) -> (M, n, C), x (d,) -> (M, C).

    Ensembles give their M members; any other classifier is a one-member ensemble (M = 1),
    so a generator can always average a per-member loss. Traceable (use inside jit/grad).
    """
    if is_ensemble(classifier):
        return classifier.apply_fn.member_logits(classifier.params, x)
    return classifier.raw_logits(x)[None]

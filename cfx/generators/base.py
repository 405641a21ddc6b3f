"""The generator contract.

A generator is a frozen PyTree dataclass. Its array leaves (penalty weights, step sizes,
small per-class summaries) can change between calls without recompiling the search; its
static fields (which loss, which optimiser, which distance) select the compiled program.

A generator says
  - ``terms()``: its penalties as :class:`Penalty` (name, weight, pure per-example function);
  - ``prepare(classifier, x, target)``: per-factual context computed once per search inside
    the compiled computation (e.g. target-class neighbours), read by terms as ``ctx.data``;
  - ``init_update`` / ``update``: its step rule (default: an optax optimiser);
  - ``latent`` with ``encode`` / ``decode``: search a latent z with x' = decode(z) (REVISE, CLUE);
  - ``validate(num_counterfactuals, n_features, n_classes)``: host-side checks before compiling.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from cfx import losses

OPTIMIZERS: dict[str, Callable[[Any], optax.GradientTransformation]] = {
    "sgd": optax.sgd,
    "adam": optax.adam,
    "rmsprop": optax.rmsprop,
    "adagrad": optax.adagrad,
}
CONVERGENCE = ("threshold", "generator_conditions", "max_steps")


class Penalty(NamedTuple):
    """One weighted term of the objective: ``weight * fn(x_cf, x, ctx)``.

    ``per="example"`` terms see one counterfactual (d,); ``per="set"`` terms see the K
    counterfactuals of a factual (K, d) and are added once per factual.
    """

    name: str
    weight: Any
    fn: Callable
    per: str = "example"


def static(default):
    """A static (compile-time) dataclass field."""
    return struct.field(pytree_node=False, default=default)


@struct.dataclass(kw_only=True)
class Generator:
    """Shared fields: ``learning_rate`` (leaf), and static ``optimizer`` (a name in
    ``OPTIMIZERS`` or a callable ``lr -> optax.GradientTransformation``), ``yloss`` (a name in
    ``cfx.losses.YLOSSES``), ``convergence`` (one of ``CONVERGENCE``) and ``init``
    (``"identity"`` or ``"noise"``) — the defaults a call to :func:`cfx.generate` may override.
    """

    name: ClassVar[str] = "generator"
    description: ClassVar[str] = ""
    latent: ClassVar[bool] = False  # True: search z with x' = decode(z) (see encode / decode)

    learning_rate: float = 0.1
    optimizer: Any = static("sgd")
    yloss: str = static("cross_entropy")
    convergence: str = static("threshold")
    init: str = static("identity")

    def __post_init__(self):
        if self.yloss not in losses.YLOSSES:
            raise ValueError(f"{type(self).__name__}.yloss must be one of {sorted(losses.YLOSSES)}; got {self.yloss!r}")
        if not (callable(self.optimizer) or self.optimizer in OPTIMIZERS):
            raise ValueError(
                f"{type(self).__name__}.optimizer must be one of {sorted(OPTIMIZERS)} or a callable lr -> optax "
                f"transformation; got {self.optimizer!r}"
            )
        if self.convergence not in CONVERGENCE:
            raise ValueError(f"{type(self).__name__}.convergence must be one of {CONVERGENCE}; got {self.convergence!r}")
        if self.init not in ("identity", "noise"):
            raise ValueError(f"{type(self).__name__}.init must be 'identity' or 'noise'; got {self.init!r}")

    # ------------------------------------------------------------------ the objective
    def terms(self) -> tuple[Penalty, ...]:
        """Penalties of the objective; none by default."""
        return ()

    def prepare(self, classifier, x: jax.Array, target: jax.Array) -> Any:
        """Per-factual context (leading axis n) computed once per search; None by default."""
        return None

    # ------------------------------------------------------------------ latent search
    def encode(self, x: jax.Array) -> jax.Array:
        """Starting point z_0 for factuals x (n, K, d) when ``latent``; identity otherwise."""
        return x

    def decode(self, z: jax.Array) -> jax.Array:
        """Counterfactual x' = g(z) (n, K, m) -> (n, K, d) when ``latent``; identity otherwise."""
        return z

    # ------------------------------------------------------------------ the step rule
    def make_optimizer(self) -> optax.GradientTransformation:
        factory = OPTIMIZERS.get(self.optimizer, self.optimizer) if isinstance(self.optimizer, str) else self.optimizer
        return factory(self.learning_rate)

    def init_update(self, z: jax.Array) -> Any:
        return self.make_optimizer().init(z)

    def update(self, grad: jax.Array, state: Any, z: jax.Array, constraints) -> tuple[jax.Array, Any]:
        """One step for all counterfactuals: returns (z_next before projection, new state).

        ``grad`` already has immutable components zeroed.
        """
        updates, state = self.make_optimizer().update(grad, state, z)
        return optax.apply_updates(z, updates), state

    # ------------------------------------------------------------------ checks
    def validate(self, num_counterfactuals: int, n_features: int, n_classes: int) -> None:
        """Raise ValueError (before compiling) when the generator cannot run on this problem:
        weights must be finite and >= 0, the learning rate finite and > 0; subclasses add
        their own checks (data summaries of the right width, K > 1, ...)."""
        name = type(self).__name__
        lr = np.asarray(self.learning_rate, np.float64)
        if not (np.all(np.isfinite(lr)) and np.all(lr > 0)):
            raise ValueError(f"{name}.learning_rate must be finite and > 0; got {self.learning_rate!r}")
        for penalty in self.terms():
            weight = np.asarray(penalty.weight, np.float64)
            if not (np.all(np.isfinite(weight)) and np.all(weight >= 0)):
                raise ValueError(f"{name}: the weight of {penalty.name!r} must be finite and >= 0; got {penalty.weight!r}")

    def _check_width(self, field: str, array, n_features: int, hint: str) -> None:
        """A data summary stored on the generator must have the classifier's feature width."""
        if array is None:
            raise ValueError(f"{type(self).__name__}.{field} is missing: {hint}")
        if np.shape(array)[-1] != n_features:
            raise ValueError(
                f"{type(self).__name__}.{field} has {np.shape(array)[-1]} features; the classifier expects "
                f"{n_features} ({hint} with the classifier's training data)"
            )

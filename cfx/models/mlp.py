"""Multi-layer perceptrons (flax.linen) and the pure ``(params, x) -> logits`` adaptor.

A model with no hidden layers, ``MLP(widths=())``, is multinomial logistic regression:
``f(x) = x W + b``; cfx calls it the ``"linear"`` model (recourse-dynamics experiments).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cfx._validate import float_dtype

#: Activation name -> function. ``swish`` and ``silu`` are the same function.
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "swish": nn.swish,
    "silu": nn.silu,
    "tanh": nn.tanh,
    "sigmoid": nn.sigmoid,
    "gelu": nn.gelu,
    "elu": nn.elu,
    "leaky_relu": nn.leaky_relu,
    "softplus": nn.softplus,
    "identity": lambda h: h,
}


def _check_activation(activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {activation!r}")


class MLP(nn.Module):
    """Dense network ``x -> [Dense(w) -> act -> Dropout] * len(widths) -> Dense(n_classes)``.

    Attributes:
      widths: hidden layer widths; ``()`` gives logistic regression (the ``"linear"`` model).
      n_classes: number of output logits C.
      activation: a key of :data:`ACTIVATIONS` (``"relu"``, ``"swish"``, ``"tanh"``, ...).
      dropout: dropout rate after every hidden activation; active only with ``train=True``
        and a ``"dropout"`` rng, so inference is pure and deterministic.

    Example::

        mlp = MLP(widths=(64, 64), n_classes=2)
        variables = mlp.init(jax.random.key(0), jnp.zeros((1, d)))
        logits = mlp.apply(variables, x)                       # (n, 2), deterministic
        logits = mlp.apply(variables, x, train=True, rngs={"dropout": key})
    """

    widths: Sequence[int] = (64, 64)
    n_classes: int = 2
    activation: str = "relu"
    dropout: float = 0.0

    def __post_init__(self):
        # Validate eagerly so a typo fails at construction, not deep inside a trace.
        _check_activation(self.activation)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout!r}")
        if self.n_classes < 1:
            raise ValueError(f"n_classes must be >= 1; got {self.n_classes!r}")
        if any(int(w) < 1 for w in self.widths):
            raise ValueError(f"widths must be positive ints; got {tuple(self.widths)!r}")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        h = x
        for i, width in enumerate(self.widths):
            h = act(nn.Dense(int(width), name=f"hidden_{i}")(h))
            if self.dropout > 0.0:
                h = nn.Dropout(self.dropout, deterministic=not train)(h)
        return nn.Dense(self.n_classes, name="logits")(h)


def accepts_train_flag(module: nn.Module) -> bool:
    """Whether ``module.__call__`` takes a ``train`` keyword (then dropout etc. can be switched on)."""
    try:
        return "train" in inspect.signature(type(module).__call__).parameters
    except (TypeError, ValueError):
        return False


@dataclasses.dataclass(frozen=True)
class ModuleApply:
    """Pure inference function of a flax module: ``apply_fn(variables, x) -> logits``.

    A hashable value (flax modules compare by their attributes), so two Classifiers built
    from equal modules share one ``apply_fn`` and anything jitted over a Classifier is not
    recompiled when a model is refitted. ``variables`` is the dict returned by
    ``module.init`` (``{"params": ...}``).
    """

    module: nn.Module

    def __call__(self, variables: Any, x: jax.Array) -> jax.Array:
        return self.module.apply(variables, x)

    def train_logits(self, variables: Any, x: jax.Array, key: jax.Array | None) -> jax.Array:
        """Logits in training mode (dropout on) where the module supports a ``train`` flag."""
        if key is not None and accepts_train_flag(self.module):
            return self.module.apply(variables, x, train=True, rngs={"dropout": key})
        return self.module.apply(variables, x)

    def init(self, key: jax.Array, n_features: int) -> Any:
        """Fresh variables for inputs of width ``n_features``."""
        # draws in float32 (flax's default param_dtype), then float_dtype: under x64 the same
        # starting weights, held and trained in float64 (Dense promotes to its params' dtype)
        variables = self.module.init(key, jnp.zeros((1, n_features), jnp.float32))
        return jax.tree_util.tree_map(
            lambda v: v.astype(float_dtype()) if jnp.issubdtype(v.dtype, jnp.floating) else v, variables
        )

"""The value a search returns. Failure is a value (``converged=False``), never an exception."""

from __future__ import annotations

from typing import Any

import jax
from flax import struct


@struct.dataclass
class CounterfactualResult:
    """Counterfactuals for n factuals, K each, d features (a PyTree).

    Attributes:
      factuals: (n, d) the inputs.
      target: (n,) int target class per factual.
      counterfactuals: (n, K, d).
      converged: (n, K) bool, the convergence rule held at the final point.
      steps: (n, K) int, optimisation steps taken before the counterfactual froze.
      target_probs: (n, K) p(target | x') at the final point.
      losses: dict term name -> (n, K) at the final point: ``"yloss"``, each penalty,
        and ``"total"`` (yloss + sum of weighted penalties).
      path: (n, K, max_steps + 1, d) search path when ``return_path=True``, else None; the
        iterates as searched, i.e. with one-hot groups still relaxed (``counterfactuals`` is
        the final point with groups snapped).
      threshold: the decision threshold tau used for convergence.
      runtime_s: wall-clock seconds of the compiled search (excludes compilation).
      compile_s: seconds spent tracing and compiling (0.0 when the cache was hit).
      generator: the generator's name.
    """

    factuals: jax.Array
    target: jax.Array
    counterfactuals: jax.Array
    converged: jax.Array
    steps: jax.Array
    target_probs: jax.Array
    losses: dict[str, jax.Array]
    path: Any = None
    threshold: float = struct.field(pytree_node=False, default=0.5)
    runtime_s: float = struct.field(pytree_node=False, default=0.0)
    compile_s: float = struct.field(pytree_node=False, default=0.0)
    generator: str = struct.field(pytree_node=False, default="")

    @property
    def n_factuals(self) -> int:
        return self.counterfactuals.shape[0]

    @property
    def num_counterfactuals(self) -> int:
        return self.counterfactuals.shape[1]

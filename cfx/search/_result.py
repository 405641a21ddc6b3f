"""The value a search returns. Failure is a value (an outcome code), never an exception."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from cfx import _deprecated

#: Per-counterfactual outcome codes (``CounterfactualResult.outcome``).
CONVERGED = 0  # the convergence rule holds at the returned point
MAX_STEPS = 1  # ran out of steps before the rule held
NONFINITE = 2  # a step gave NaN/inf and was refused; the row kept its last finite point
NOT_REACHED = 3  # stopped before max_steps (the generator gave up) without the rule holding
UNCHANGED = 4  # ran out of steps with x' still the factual itself: nothing moved it (a model or objective
#                without gradient there, every feature immutable or held by its bounds); never a silent copy
OUTCOMES = ("converged", "max_steps", "nonfinite", "not_reached", "unchanged")


@struct.dataclass
class CounterfactualResult:
    """Counterfactuals for n factuals, K each, d features: a PyTree of arrays only, so a jitted
    consumer never retraces because of it.

    Attributes:
      factuals: (n, d) the inputs.
      target: (n,) int target class per factual; -1 for an untargeted row.
      counterfactuals: (n, K, d).
      outcome: (n, K) int code, one of :data:`OUTCOMES` (index): converged, max_steps,
        nonfinite, not_reached, unchanged (out of steps with x' still equal to the factual).
      steps: (n, K) int, optimisation steps taken before the counterfactual froze.
      target_probs: (n, K) p(target | x') at the final point (untargeted rows: the largest
        probability of a class other than the factual's prediction).
      terms: dict term name -> (n, K) at the final point: every term of the objective
        (``"yloss"`` and each penalty, unweighted) and ``"total"`` (their weighted sum).
        (``losses`` before cfx 0.2: still read, with a warning.)
      path: (n, K, max_steps + 1, d) search path when ``return_path=True``, else None; the
        iterates as searched, i.e. with one-hot groups still relaxed (``counterfactuals`` is
        the final point with groups snapped). After a row froze its last point repeats.
      track: the final state of a user ``track`` hook, else None.
      threshold: () the decision threshold τ the search used.
      runtime_s: () wall-clock seconds of the compiled search (excludes compilation).
      compile_s: () seconds spent tracing and compiling (0 when the cache was hit).
    """

    factuals: jax.Array
    target: jax.Array
    counterfactuals: jax.Array
    outcome: jax.Array
    steps: jax.Array
    target_probs: jax.Array
    terms: dict[str, jax.Array]
    path: Any = None
    track: Any = None
    threshold: Any = 0.5
    runtime_s: Any = 0.0
    compile_s: Any = 0.0

    @property
    def losses(self) -> dict[str, jax.Array]:
        """Deprecated (cfx 0.3 removes it): the objective's terms are ``terms``."""
        _deprecated.warn("CounterfactualResult.losses", "read result.terms (the objective's terms)")
        return self.terms

    @property
    def converged(self) -> jax.Array:
        """(n, K) bool: the convergence rule held at the returned point."""
        return jnp.asarray(self.outcome) == CONVERGED

    def __repr__(self) -> str:
        n, K = self.counterfactuals.shape[:2]
        try:  # concrete arrays only: under jit or vmap a result is a tracer tree
            converged = float(jnp.mean(self.converged))
            steps = float(jnp.mean(jnp.asarray(self.steps, jnp.float32)))
            runtime = float(self.runtime_s)
        except (jax.errors.ConcretizationTypeError, TypeError):
            return f"CounterfactualResult(n={n}, K={K}, traced)"
        return (
            f"CounterfactualResult(n={n}, K={K}, converged={converged:.1%}, mean steps={steps:.1f}, "
            f"runtime={runtime * 1e3:.1f} ms)"
        )

    def to_frame(self, feature_names=None):
        """One row per counterfactual (n·K): factual index, k, target, outcome name, steps,
        p(target), and the counterfactual's features (``feature_names`` or x0, x1, ...)."""
        import numpy as np
        import pandas as pd

        cf = np.asarray(self.counterfactuals)
        n, K, d = cf.shape
        names = [f"x{j}" for j in range(d)] if feature_names is None else list(feature_names)
        if len(names) != d:
            raise ValueError(f"feature_names has {len(names)} names; the counterfactuals have {d} features")
        frame = pd.DataFrame(
            {
                "factual": np.repeat(np.arange(n), K),
                "k": np.tile(np.arange(K), n),
                "target": np.repeat(np.asarray(self.target), K),
                "outcome": np.asarray(OUTCOMES)[np.asarray(self.outcome).ravel()],
                "steps": np.asarray(self.steps).ravel(),
                "target_prob": np.asarray(self.target_probs).ravel(),
            }
        )
        return pd.concat([frame, pd.DataFrame(cf.reshape(n * K, d), columns=names)], axis=1)

    @property
    def n_factuals(self) -> int:
        """n, the number of factuals."""
        return self.counterfactuals.shape[0]

    @property
    def num_counterfactuals(self) -> int:
        """K, the counterfactuals per factual."""
        return self.counterfactuals.shape[1]


_deprecated.renamed_keywords(CounterfactualResult, {"losses": "terms"})  # CounterfactualResult(losses=...) warns

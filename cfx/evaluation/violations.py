"""Constraint violations (SPEC §4): all 0 for a feasible counterfactual.

Against the context's resolved constraints, with Δ = x' − x:

- ``immutable_changed`` = #{j immutable : |Δ_j| > 1e-5};
- ``out_of_bounds`` = #{j : x'_j < lower_j or x'_j > upper_j} (exact: the search clamps exactly);
- ``invalid_onehot`` = one-hot groups that are not valid: a group is valid when every column
  is within 1e-5 of 0 or 1 and exactly one is 1; a single-column group when its value is
  within 1e-5 of 0 or 1;
- ``monotone_violated`` = increase-only features with Δ_j < −1e-5 plus decrease-only
  features with Δ_j > 1e-5;
- ``violations`` = the sum of the four.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cfx.constraints import DECREASE, INCREASE
from cfx.evaluation.conventions import CHANGE_TOL
from cfx.evaluation.registry import register_family


def violations(cf: jax.Array, x: jax.Array, target, ctx) -> dict[str, jax.Array]:
    """Counts of broken constraints of one counterfactual."""
    rc = ctx.constraints
    delta = cf - x
    immutable = jnp.sum(rc.immutable & (jnp.abs(delta) > CHANGE_TOL))
    oob = jnp.sum((cf < rc.lower) | (cf > rc.upper))
    monotone = jnp.sum(
        ((rc.mutability == INCREASE) & (delta < -CHANGE_TOL)) | ((rc.mutability == DECREASE) & (delta > CHANGE_TOL))
    )
    onehot = jnp.zeros((), jnp.int32)
    for group in rc.categorical_groups:  # static, over feature groups (not examples)
        cols = cf[jnp.asarray(group)]
        binary = jnp.all((jnp.abs(cols) <= CHANGE_TOL) | (jnp.abs(cols - 1.0) <= CHANGE_TOL))
        ok = binary if len(group) == 1 else binary & (jnp.abs(jnp.sum(cols) - 1.0) <= CHANGE_TOL)
        onehot = onehot + (~ok).astype(jnp.int32)
    return {
        "immutable_changed": immutable,
        "out_of_bounds": oob,
        "invalid_onehot": onehot,
        "monotone_violated": monotone,
        "violations": immutable + oob + onehot + monotone,
    }


register_family(
    violations,
    {
        "immutable_changed": "immutable features with |x'_j - x_j| > 1e-5",
        "out_of_bounds": "features outside [lower_j, upper_j]",
        "invalid_onehot": "categorical groups that are not a valid one-hot vector (a single column: not in {0, 1})",
        "monotone_violated": "increase-only features that decreased or decrease-only features that increased (> 1e-5)",
        "violations": "immutable_changed + out_of_bounds + invalid_onehot + monotone_violated",
    },
    group="violations",
    needs=("constraints",),
    cost=lambda ctx, shape: (shape[-1], 0),
    headline=("violations",),
)

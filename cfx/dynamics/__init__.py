"""Endogenous dynamics of algorithmic recourse (Altmeyer et al., SaTML 2023; SPEC §6).

    res = cfx.dynamics.simulate(train, test, {"generic": cfx.generators.Generic(),
                                              "claproar": cfx.generators.ClaPROAR()},
                                model="linear", rounds=50, mu=0.05)
    res.history[-1]["mmd_domain"], res.history[-1]["p_domain"]

:func:`simulate` runs the recourse loop (one jitted round at fixed shapes, checkpointed,
resumable); :func:`mmd` / :func:`mmd_test` are the unbiased Gaussian-kernel MMD² and its
permutation test; :func:`evaluate_state` computes every shift metric at once.
"""

from cfx import _deprecated
from cfx.dynamics.metrics import (
    METRICS,
    P_VALUES,
    MetricOptions,
    evaluate_state,
    f1_score,
    feature_grid,
    parameter_change,
)
from cfx.dynamics.mmd import DEFAULT_LENGTH_SCALE, gaussian_kernel, masked_mmd_test, mmd, mmd_test
from cfx.dynamics.simulation import DRAWS, POOLS, CfxTrainer, SimulationResult, simulate

__all__ = [
    "simulate",
    "SimulationResult",
    "POOLS",
    "DRAWS",
    "CfxTrainer",
    "MetricOptions",
    "mmd",
    "mmd_test",
    "masked_mmd_test",
    "gaussian_kernel",
    "evaluate_state",
    "feature_grid",
    "f1_score",
    "parameter_change",
    "METRICS",
    "P_VALUES",
    "DEFAULT_LENGTH_SCALE",
]

#: The jitted functions of cfx.dynamics (and its MMD test), by name: what ``trace_count`` counted.
_JITTED = ("_draw", "_system_keys", "_move", "_evaluate", "_masked_test")

_trace_count = None


def __getattr__(name):
    # cfx.dynamics.trace_count() was a trace counter in production code; tests count traces with
    # tests/compile_counts.py (JAX's monitoring events) now (0.2)
    global _trace_count
    if name == "trace_count":
        _deprecated.warn(
            "cfx.dynamics.trace_count", "count traces from JAX's monitoring events (tests/compile_counts.py)"
        )
        if _trace_count is None:
            _trace_count = _deprecated.trace_counter(_JITTED)
        return _trace_count
    raise AttributeError(f"module 'cfx.dynamics' has no attribute {name!r}")

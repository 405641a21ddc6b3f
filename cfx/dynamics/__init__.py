"""Endogenous dynamics of algorithmic recourse (Altmeyer et al., SaTML 2023; SPEC §6).

    res = cfx.dynamics.simulate(train, test, {"generic": cfx.generators.Generic(),
                                              "claproar": cfx.generators.ClaPROAR()},
                                model="linear", rounds=50, mu=0.05)
    res.history[-1]["mmd_domain"], res.history[-1]["p_domain"]

:func:`simulate` runs the recourse loop (one jitted round at fixed shapes, checkpointed,
resumable); :func:`mmd` / :func:`mmd_test` are the unbiased Gaussian-kernel MMD² and its
permutation test; :func:`evaluate_state` computes every shift metric at once.
"""

from cfx.dynamics.metrics import (
    METRICS,
    P_VALUES,
    MetricOptions,
    evaluate_state,
    f1_score,
    feature_grid,
    parameter_change,
)
from cfx.dynamics.mmd import DEFAULT_LENGTH_SCALE, gaussian_kernel, masked_mmd_test, mmd, mmd_test, trace_count
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
    "trace_count",
    "evaluate_state",
    "feature_grid",
    "f1_score",
    "parameter_change",
    "METRICS",
    "P_VALUES",
    "DEFAULT_LENGTH_SCALE",
]

"""The recourse dynamics' MMD² and permutation test: :mod:`cfx.evaluation.mmd` (cfx has one
kernel and one MMD; this name stays for the dynamics' imports and its trace counter)."""

from cfx.evaluation.mmd import (
    DEFAULT_LENGTH_SCALE,
    _TRACES,
    _check_options,
    _masked_test,
    _permuted_groups,
    gaussian_kernel,
    masked_mmd_test,
    mmd,
    mmd2,
    mmd_test,
    trace_count,
)

__all__ = [
    "gaussian_kernel",
    "mmd",
    "mmd2",
    "mmd_test",
    "masked_mmd_test",
    "trace_count",
    "DEFAULT_LENGTH_SCALE",
    "_TRACES",
    "_check_options",
    "_masked_test",
    "_permuted_groups",
]

"""The recourse dynamics' MMD² and permutation test: :mod:`cfx.evaluation.mmd` (cfx has one
kernel and one MMD; this name stays for the dynamics' imports)."""

from cfx.evaluation.mmd import (
    DEFAULT_LENGTH_SCALE,
    _check_options,
    _masked_test,
    _permuted_groups,
    gaussian_kernel,
    masked_mmd_test,
    mmd,
    mmd2,
    mmd_test,
)

__all__ = [
    "gaussian_kernel",
    "mmd",
    "mmd2",
    "mmd_test",
    "masked_mmd_test",
    "DEFAULT_LENGTH_SCALE",
    "_check_options",
    "_masked_test",
    "_permuted_groups",
]


def __getattr__(name):
    if name == "trace_count":  # deprecated (0.2): cfx.dynamics.trace_count warns and says what to use
        import cfx.dynamics

        return cfx.dynamics.trace_count
    raise AttributeError(f"module 'cfx.dynamics.mmd' has no attribute {name!r}")

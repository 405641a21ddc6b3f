"""Shared timing for the benchmark scripts: compile once, then the best of ``repeats`` calls."""

from __future__ import annotations

import time
from typing import Callable, Mapping

import numpy as np


def best_of(run: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Seconds of the fastest of ``repeats`` calls of each function, after one compiling call
    each; the calls interleave so a load spike on a shared machine hits every entry alike."""
    for fn in run.values():
        fn()  # compile
    best = {name: np.inf for name in run}
    for _ in range(repeats):
        for name, fn in run.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best

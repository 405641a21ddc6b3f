"""The search: the pure core :func:`search`, the checked host wrapper :func:`generate`, what they return.

Public here (and most of it at the top level, ``cfx.generate`` …): :func:`generate`,
:func:`search`, :class:`CounterfactualResult` and its outcome codes (``OUTCOMES``,
``CONVERGED`` …), the tracks (:class:`Track`, :func:`track_path`, :func:`track_last_within`),
:func:`compile_cache` (JAX's persistent compilation cache).
Several processes: :func:`generate` with ``multiprocess=`` (docs/scale.md).

The private modules are the host plumbing, none of it API:

    _core         search (pure, traceable) and the compiled programs generate runs
    _generate     generate: checks, chunks, devices, compaction around those programs
    _checks       input checks, run on the host before anything is traced
    _runtime      ahead-of-time compiled executables cached on the abstract signature, chunking
    _distributed  the multi-process steps: mesh, agreement between processes, global arrays
    _convergence  the convergence rules (also read by cfx.explain and cfx.restarts)
    _tracks       what the loop records per step besides the final point
    _result       the result type and outcome codes
    _compile_cache  JAX's persistent compilation cache folder (``cfx run --compile-cache``)
"""

from __future__ import annotations

import os

from cfx.search import _compile_cache
from cfx.search._compile_cache import CacheStatus
from cfx.search._core import search
from cfx.search._generate import generate
from cfx.search._result import CONVERGED, MAX_STEPS, NONFINITE, NOT_REACHED, OUTCOMES, UNCHANGED, CounterfactualResult
from cfx.search._tracks import Track, track_last_within, track_path


def compile_cache(directory: str | os.PathLike | None = None, *, disabled: bool = False) -> CacheStatus:
    """Switch JAX's persistent compilation cache on (compiled programs kept on disk between runs) or off.

    The folder, first match wins: ``disabled`` (off), ``directory``, ``$CFX_COMPILE_CACHE``
    (a folder, or "0"/"off"/… for off), ``$JAX_COMPILATION_CACHE_DIR`` (JAX's own, kept), else
    ``$XDG_CACHE_HOME/cfx/jax`` or ``~/.cache/cfx/jax``. Affects the whole process: call it
    before anything compiles. An unwritable folder warns once and runs without a cache.

    Returns:
      a :class:`CacheStatus`: ``.dir`` is the folder in use (None: off, ``.reason`` says why);
      ``.record()`` counts the cache hits and writes since this call.

        status = cfx.search.compile_cache()      # what ``cfx run`` does
    """
    return _compile_cache.configure(_compile_cache.resolve(directory, disabled))


__all__ = [
    "CONVERGED",
    "MAX_STEPS",
    "NONFINITE",
    "NOT_REACHED",
    "OUTCOMES",
    "UNCHANGED",
    "CacheStatus",
    "CounterfactualResult",
    "Track",
    "compile_cache",
    "generate",
    "search",
    "track_last_within",
    "track_path",
]

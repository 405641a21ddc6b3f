"""The host wrapper :func:`generate`: input checks, chunks, devices, compaction, around the compiled search."""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np

from cfx.search import _checks as checks, _distributed as distributed, _runtime as runtime
from cfx.classifier import Classifier
from cfx.constraints import Constraints
from cfx.generators.base import Generator
from cfx.search._core import _PHASES, _search_jit
from cfx.search._result import NONFINITE, CounterfactualResult
from cfx.search._tracks import Track


@distributed.agree_on_errors
def generate(
    generator: Generator,
    classifier: Classifier,
    x,
    target,
    *,
    key: jax.Array,
    constraints: Constraints | None = None,
    max_steps: int = 100,
    start: Any = None,
    return_path: bool = False,
    track: Track | None = None,
    batch_size: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    loop: str = "while",
    multiprocess: bool | None = None,
    compact: int | str | None = "auto",
    **moved,
) -> CounterfactualResult:
    """Search counterfactuals for a batch of factuals in one compiled computation.

    Minimises ``Σ_i λ_i · term_i(x', x)`` (the generator's yloss with λ = 1 and its
    penalties) over x' for every factual and each of its K counterfactuals, projecting onto
    ``constraints`` after every step.

    The search options are the generator's fields (``threshold`` τ, ``num_counterfactuals`` K,
    the start rule ``start``, ``convergence``, ``min_steps``): set them with
    ``generator.replace(threshold=0.9)``. ``max_steps``, a start of your own and the batching
    options belong to the call. (Before cfx 0.2 those five were keywords here too; they still
    work until 0.3, with a warning: ``init=`` is now ``start=``.)

    Args:
      generator: a generator from :mod:`cfx.generators` (its leaves may change freely
        between calls without recompiling).
      classifier: a :class:`cfx.Classifier`.
      x: one factual (d,) or a batch (n, d).
      target: the target class, an int or one per factual (n,); None (or -1 per row):
        untargeted, i.e. any class other than the factual's prediction.
      key: PRNG key (noisy starts, stochastic step rules).
      constraints: :class:`cfx.Constraints` (e.g. ``train.schema.constraints()``); none by default.
      max_steps: the most optimisation steps (always finite).
      start: an array of starts of your own, (n, d) or (n, K, d) (projected onto the
        constraints); None: the generator's start rule (``generator.start``: ``"identity"``,
        ``"noise"``, ``"uniform"``).
      return_path: also return every iterate, as (n, K, max_steps + 1, d).
      track: a :class:`Track` (e.g. :func:`track_last_within`); its final state is ``result.track``.
      batch_size: search at most this many factuals per compiled call (padded chunks of one
        shape, so one compilation serves all); default: equal chunks of at most 10,000
        counterfactuals (n·K) per device on a CPU (cache-sized), 65,536 on an accelerator.
        With several chunks each is gathered to the host as it finishes (the result holds
        numpy arrays), so memory on the devices stays that of one chunk.
      devices: shard each chunk's factuals over these devices (a 1-D mesh); default: all
        local devices (multi-process: all devices of all processes). Results do not depend
        on the chunking or the sharding.
      loop: ``"while"`` (early exit) or ``"scan"`` (every step; differentiable).
      compact: early-exit compaction, the round length S in steps, or None (off). The
        search runs in rounds of S steps; between rounds the rows still running are gathered
        into a smaller padded bucket (power-of-two sizes, so compilations stay few), so rows
        that converged early stop costing compute. Same result as without. ``"auto"`` (the
        default): S = 50 where it was measured to win, ``max_steps >= 500`` with the while
        loop in one process (a long tail of slow rows: 7-12x faster; all rows fast: a few ms
        slower), else off (docs/benchmarks.md).
      multiprocess: search over every process under ``jax.distributed.initialize``: each
        process passes its own rows (x, target, start) and the same everything else, and gets
        its own rows back; row ids are global, so the result equals one search over all rows
        (see cfx/search/_distributed.py). None: when ``jax.process_count() > 1``; False: this
        process's rows on its own devices only.
      **moved: the deprecated keywords ``threshold``, ``num_counterfactuals``, ``init``,
        ``convergence``, ``min_steps`` (each warns, naming what to write instead).

    Returns:
      :class:`cfx.CounterfactualResult` with leading axis n (n = 1 for a single factual).
      A row that cannot reach the target has an outcome other than converged; nothing raises.

    Example::

        res = cfx.generate(cfx.generators.Generic(), clf, x, target=1, key=jax.random.key(0))
    """
    multiprocess = distributed.resolve_mode(multiprocess)
    checks.check_types(generator=generator, classifier=classifier, constraints=constraints)
    start, overrides = checks.moved_options(start, moved)
    user_generator, generator = generator, checks.with_overrides(generator, **overrides)
    generator = checks.fitted_for(generator, classifier)  # ECCCo() with a calibrated classifier: q̂ from it
    checks.check_options(max_steps, batch_size, loop)
    compact = checks.check_compact(compact, loop, multiprocess, max_steps)
    x_np = checks.check_factuals(x, classifier)
    n, d = x_np.shape
    K = generator.num_counterfactuals
    target_np = checks.check_target(target, n, classifier.n_classes)
    checks.check_regression_target(classifier, target_np)
    key = checks.check_key(key)
    constraints = runtime.UNCONSTRAINED if constraints is None else constraints
    devices = distributed.mesh_devices(devices, multiprocess)
    batch, shared = runtime.shardings(tuple(devices))
    resolved, host_bounds, on_devices = runtime.placed_constraints(constraints, d, None if multiprocess else shared)
    checks.check_within_bounds(x_np, host_bounds)
    common = None if multiprocess else runtime.placed_common(user_generator, overrides, generator, classifier, shared)
    if common is None:  # not cached: validate (a cached entry was validated when it was placed)
        generator.validate(K, classifier.n_features, classifier.n_classes)
    start_np = None if start is None else checks.check_start(start, n, K, d)
    share = None
    if multiprocess:  # one allgather: every process's row count; each pads to the largest share
        share = distributed.agree(
            n,
            devices,
            values=(generator, classifier, key, resolved),
            features=d,
            num_counterfactuals=K,
            max_steps=max_steps,
            batch_size=batch_size,
            return_path=return_path,
            loop=loop,
        )
    n_rows, n_devices = (n, len(devices)) if share is None else (share.most, len(devices) // share.processes)

    if batch_size is None:  # the default: equal chunks of at most the platform's rows, so little is padding
        n_chunks = -(-n_rows // max(1, runtime.default_chunk_rows(devices[0]) * n_devices // K))
        batch_size = -(-n_rows // n_chunks)
    chunk = runtime.round_up(min(n_rows, batch_size), n_devices)  # every device gets the same rows
    if share is None:
        common = runtime.device_leaves(generator, classifier) if common is None else common
        options = (key, on_devices)
        places = (shared, batch)  # (replicated inputs, per-row inputs)
    else:  # global arrays need each process's copy
        common = distributed.replicate(runtime.device_leaves(generator, classifier), shared)
        options = distributed.replicate((key, resolved), shared)
        places = (None, None)  # already global arrays
    static = dict(max_steps=int(max_steps), track=track, return_path=bool(return_path), loop=loop)
    seconds = {"compile": 0.0, "run": 0.0}

    def search_rows(ids, at_least, size, checked):
        """The result for the factuals ``ids`` (ascending), searched in chunks of ``size`` rows
        (padded with copies of the first to at least ``at_least`` rows, a multiple of ``size``)."""
        padded = np.full(runtime.round_up(at_least, size), ids[0], np.int32)
        padded[: len(ids)], parts = ids, []
        run_of_rows = ids[-1] - ids[0] == len(ids) - 1  # then a chunk without padding is a view, not a copy
        for begin in range(0, len(padded), size):
            idx = padded[begin : begin + size]
            rows = slice(ids[0] + begin, ids[0] + begin + size) if run_of_rows and begin + size <= len(ids) else idx
            per_row = (x_np[rows], target_np[rows], idx, None if start_np is None else start_np[rows])
            if compact:
                out = runtime.compacted(
                    _PHASES, common, per_row, options, static, compact, shared, batch, n_devices, seconds
                )
            else:
                if share is not None:  # this process's block of a global chunk; its row ids follow lower ranks'
                    per_row = distributed.global_rows((*per_row[:2], idx + share.offset, per_row[3]), batch, share)
                shardings = (places[0],) * len(common) + (places[1],) * len(per_row) + (places[0],) * len(options)
                out = runtime.run(
                    _search_jit, (*common, *per_row, *options), shardings, {**static, "checked": checked}, seconds
                )
                out = out if share is None else distributed.local_rows(out, batch, share)
            # Several chunks are gathered to the host one by one, so device memory holds one chunk.
            parts.append(out if len(padded) == size else jax.device_get(out))
        result = parts[0] if len(parts) == 1 else runtime.concatenate(parts)
        cut = len(padded) > len(ids)
        return jax.tree_util.tree_map(lambda a: a[: len(ids)] if a.ndim else a, result) if cut else result

    # One process without compaction runs the unchecked step; rows that took a non-finite step
    # (rare) are searched again with every step checked, which gives them the checked result.
    fast = not compact and share is None
    result = search_rows(np.arange(n), n_rows, chunk, checked=not fast)
    again = np.flatnonzero((np.asarray(result.outcome) == NONFINITE).any(axis=1)) if fast else ()
    if len(again):
        redo = search_rows(again, len(again), min(chunk, runtime.round_up(len(again), n_devices)), checked=True)
        result = runtime.replace_rows(result, again, redo)
    return result.replace(runtime_s=np.float32(seconds["run"]), compile_s=np.float32(seconds["compile"]))

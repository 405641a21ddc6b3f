"""The host side of a search: compiled programs, device placement, chunks and buckets.

``cfx.search.generate`` runs its programs through :func:`run`: AOT-compiled executables cached
on the abstract signature of their arguments (so compile time is reported apart from run
time, and new parameters or λ values reuse a program), inputs placed by intended shardings,
and a per-call fast path that keeps immutable generators, models and constraints on the
devices between calls.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from cfx.search import _checks as checks
from cfx.classifier import Classifier
from cfx.constraints import Constraints, ResolvedConstraints
from cfx.generators.base import Generator
from cfx.search._result import CounterfactualResult

# Compiled executables keyed on the abstract signature of the arguments (tree structure incl.
# static generator fields and apply_fn, shapes, dtypes) and the static options. Keeping the
# AOT executables ourselves lets every call report compile time separately from run time.
_COMPILED: "collections.OrderedDict[Any, Any]" = collections.OrderedDict()
_CACHE_SIZE = 64


def _node_types(treedef) -> tuple:
    """Every node's type, depth first. PyTreeDefs of two dataclass types with the same fields
    and static values compare equal (jax 0.10), so the types must be part of the key."""
    data = treedef.node_data()
    return (None if data is None else data[0], tuple(_node_types(child) for child in treedef.children()))


def executable(jitted, args: tuple, shardings: tuple, static: dict) -> tuple[Any, float]:
    """The compiled ``jitted`` for ``args`` placed by ``shardings`` (one per argument: a
    sharding, a tree of them, or None for an array that is already placed), and the seconds
    spent compiling (0 on a cache hit). Arguments may be host arrays: the executable moves
    them, in C++, faster than a ``device_put`` from Python."""
    key = (
        jitted,
        tuple(signature(arg) for arg in args),
        tuple(jax.tree_util.tree_leaves(shardings)),
        tuple(sorted(static.items())),
    )
    if key in _COMPILED:
        _COMPILED.move_to_end(key)
        return _COMPILED[key], 0.0
    start = time.perf_counter()
    abstract = tuple(_abstract(arg, sharding) for arg, sharding in zip(args, shardings))
    executable = jitted.lower(*abstract, **static).compile()
    _COMPILED[key] = executable
    if len(_COMPILED) > _CACHE_SIZE:
        _COMPILED.popitem(last=False)
    return executable, time.perf_counter() - start


_SIGNATURES: dict = {}  # id -> (argument, signature) for arguments passed again and again (model, generator)


def signature(arg) -> tuple:
    """What of ``arg`` shapes the compiled program: tree structure with node types, and every
    leaf's shape, dtype and weak type; remembered for an object seen before (a placed model)."""
    if isinstance(arg, np.ndarray):
        return arg.shape, arg.dtype
    seen = _SIGNATURES.get(id(arg))
    if seen is not None and seen[0] is arg:
        return seen[1]
    leaves, treedef = jax.tree_util.tree_flatten(arg)
    found = (
        treedef,
        _node_types(treedef),
        tuple((np.shape(leaf), leaf.dtype, getattr(leaf, "weak_type", False)) for leaf in leaves),
    )
    if isinstance(arg, (Generator, Classifier, ResolvedConstraints)):  # long-lived, few: not carries or rows
        if len(_SIGNATURES) > 64:
            _SIGNATURES.clear()
        _SIGNATURES[id(arg)] = (arg, found)
    return found


def _abstract(arg, sharding):
    """``arg``'s leaves as ShapeDtypeStructs on ``sharding`` (a sharding, a tree of them, or None:
    the leaf's own)."""

    def spec(leaf, where):
        where = getattr(leaf, "sharding", None) if where is None else where
        return jax.ShapeDtypeStruct(
            np.shape(leaf), leaf.dtype, sharding=where, weak_type=getattr(leaf, "weak_type", False)
        )

    if sharding is None or isinstance(sharding, jax.sharding.Sharding):
        return jax.tree_util.tree_map(lambda leaf: spec(leaf, sharding), arg)
    return jax.tree_util.tree_map(spec, arg, sharding)


def run(jitted, args: tuple, shardings: tuple, static: dict, seconds: dict):
    """Run the compiled ``jitted`` on ``args``; adds its compile and run seconds to ``seconds``."""
    program, compiled_in = executable(jitted, args, shardings, static)
    seconds["compile"] += compiled_in
    began = time.perf_counter()
    out = jax.block_until_ready(program(*args))
    seconds["run"] += time.perf_counter() - began
    return out


# ------------------------------------------------------------------ per-call fast path
# A search call re-sends the generator, the model and the constraints to the devices. Objects
# whose leaves cannot change (jax arrays, Python scalars, tuples) are placed once and found again
# by identity, which takes the fixed cost of a call from about 2 ms to about 0.5 ms.
UNCONSTRAINED = Constraints()
PLACED: "collections.OrderedDict[Any, Any]" = collections.OrderedDict()
_PLACED_SIZE = 16


def _immutable_leaves(tree) -> list | None:
    """The leaves of ``tree`` when each is a jax array or an immutable Python value, else None
    (a numpy array can change in place behind an identity-keyed cache). A container changed
    in place shows in the leaves: an entry replaced is a leaf of another identity, one added or
    removed changes their number."""
    if isinstance(tree, Constraints):  # a plain frozen dataclass, not a PyTree
        tree = tuple(getattr(tree, field.name) for field in dataclasses.fields(tree))
    leaves = jax.tree_util.tree_leaves(tree)
    immutable = all(type(v) in _IMMUTABLE or isinstance(v, jax.Array) for v in leaves)
    return leaves if immutable else None


_IMMUTABLE = frozenset({int, float, bool, str, np.float32, np.float64, np.int32, np.int64, np.bool_})


def _cached(key: tuple, owners: tuple, build: Callable):
    """``build()`` once per key while ``owners`` (kept alive by the entry) are the same objects."""
    entry = PLACED.get(key)
    if entry is not None and len(entry[0]) == len(owners) and all(a is b for a, b in zip(entry[0], owners)):
        PLACED.move_to_end(key)
        return entry[1]
    value = build()
    PLACED[key] = (owners, value)
    if len(PLACED) > _PLACED_SIZE:
        PLACED.popitem(last=False)
    return value


def device_leaves(generator: Generator, classifier: Classifier) -> tuple:
    return checks.canonical_leaves(generator), jax.tree_util.tree_map(jnp.asarray, classifier)


def placed_common(user_generator, overrides, generator, classifier, shared):
    """(generator with the call's overrides, classifier) on the devices, validated; None when
    either may change in place (then the caller places and validates them every call)."""
    generator_leaves, classifier_leaves = _immutable_leaves(user_generator), _immutable_leaves(classifier)
    if generator_leaves is None or classifier_leaves is None:
        return None
    K = generator.num_counterfactuals

    def build():
        generator.validate(K, classifier.n_features, classifier.n_classes)
        return jax.device_put(device_leaves(generator, classifier), shared)

    key = ("common", id(user_generator), tuple(sorted(overrides.items())), id(classifier), shared)
    return _cached(key, (user_generator, classifier, *generator_leaves, *classifier_leaves), build)


def placed_constraints(constraints, d: int, shared):
    """(resolved constraints, host (lower, upper) for the factual check or None when every
    bound is infinite, resolved on the devices or None when ``shared`` is None), cached for
    immutable constraints."""

    def build():
        resolved = constraints if isinstance(constraints, ResolvedConstraints) else constraints.resolve(d)
        if resolved.lower.shape != (d,):
            raise ValueError(f"constraints are for {resolved.lower.shape[0]} features; x has {d}")
        host = (np.asarray(resolved.lower), np.asarray(resolved.upper))
        host = None if np.isneginf(host[0]).all() and np.isposinf(host[1]).all() else host
        return resolved, host, None if shared is None else jax.device_put(resolved, shared)

    leaves = _immutable_leaves(constraints)
    if leaves is None:
        return build()
    return _cached(("constraints", id(constraints), d, shared), (constraints, *leaves), build)


@functools.lru_cache(maxsize=16)
def shardings(devices: tuple) -> tuple[jax.sharding.Sharding, jax.sharding.Sharding]:
    """(rows split over a 1-D device mesh, replicated) shardings; one device: plain placement."""
    if len(devices) == 1:
        single = jax.sharding.SingleDeviceSharding(devices[0])
        return single, single
    mesh = jax.sharding.Mesh(np.asarray(devices), ("batch",))
    P = jax.sharding.PartitionSpec
    return jax.sharding.NamedSharding(mesh, P("batch")), jax.sharding.NamedSharding(mesh, P())


def replace_rows(result: CounterfactualResult, index: np.ndarray, rows: CounterfactualResult) -> CounterfactualResult:
    """``result`` with its rows ``index`` replaced by ``rows`` (every leaf with the rows as axis 0)."""
    n = result.outcome.shape[0]

    def replace(old, new):
        if np.ndim(old) == 0 or old.shape[0] != n:
            return old
        if isinstance(old, jax.Array):
            return old.at[index].set(new)
        old = np.array(old)
        old[index] = new
        return old

    return jax.tree_util.tree_map(replace, result, rows)


def concatenate(parts: list[CounterfactualResult]) -> CounterfactualResult:
    """Host chunks joined along the factual axis (scalar leaves such as the threshold are shared)."""
    return jax.tree_util.tree_map(lambda *a: np.concatenate(a) if a[0].ndim else a[0], *parts)


# Counterfactuals per device in one compiled call when ``batch_size`` is not given. On a CPU
# a chunk whose activations stay in cache runs ~1.5-2x faster per row than one that streams
# them from memory (10⁵ rows of an MLP 20-64-64-2, 100 steps: 2.9 s in chunks of 10,000,
# 4.1 s in two of 50,000; docs/benchmarks.md); an accelerator wants large batches. Both are small
# enough that a million factuals run in bounded memory, chunk by chunk.
DEFAULT_BATCH_ROWS = {"cpu": 10_000}
ACCELERATOR_BATCH_ROWS = 1 << 16


def default_chunk_rows(device: jax.Device) -> int:
    """Counterfactuals per device in one default chunk on ``device``'s platform."""
    return DEFAULT_BATCH_ROWS.get(device.platform, ACCELERATOR_BATCH_ROWS)


MIN_BUCKET = 32  # the smallest compacted round: fewer rows cost about as much per step on a CPU


def bucket(active: int, chunk: int, n_devices: int) -> int:
    """Rows in the next compacted round: the next power of two >= ``active`` (at least
    :data:`MIN_BUCKET`), a multiple of the device count, at most the chunk."""
    size = max(MIN_BUCKET, 1 << max(active - 1, 0).bit_length())
    return min(round_up(size, n_devices), chunk)


def scatter(full: np.ndarray, rows: np.ndarray, new: np.ndarray) -> np.ndarray:
    full[rows] = new[: rows.size]
    return full


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


# ------------------------------------------------------------------ early-exit compaction
class Phases:
    """A search as three programs, for :func:`compacted`: ``start(...) -> carry``,
    ``round(..., carry, until) -> carry`` and ``finish(..., carry) -> result`` (pure functions;
    ``static`` names their static keyword arguments), jitted once here."""

    def __init__(self, start, round, finish, static: tuple):
        self.start, self.static = start, static
        self.start_jit, self.round_jit, self.finish_jit = (
            jax.jit(f, static_argnames=static) for f in (start, round, finish)
        )


def _per_row_leaves(phases, common, per_row, options, static, n_devices):
    """Which leaves of the carry have the rows as axis 0: the ones whose shape follows n (the
    carry is traced for n and n + n_devices rows; nothing is compiled)."""

    def shapes(n):
        grow = lambda a: jax.ShapeDtypeStruct((n,) + a.shape[1:], a.dtype)
        rows = jax.tree_util.tree_map(grow, per_row)
        return jax.eval_shape(functools.partial(phases.start, **static), *common, *rows, *options)

    n = len(per_row[2])
    key = (tuple(signature(arg) for arg in (*common, *per_row, *options)), tuple(sorted(static.items())))
    if key not in _PER_ROW:
        _PER_ROW[key] = jax.tree_util.tree_map(lambda a, b: a.shape != b.shape, shapes(n), shapes(n + n_devices))
    return _PER_ROW[key]


_PER_ROW: dict = {}  # carry layouts by signature (a handful per process)


def compacted(phases: Phases, common, per_row, options, static, round_steps, shared, batch, n_devices, seconds):
    """One chunk searched in rounds of at most ``round_steps`` steps. Between rounds the rows
    still running (any of their K not done) are gathered into the smallest bucket that holds
    them (:func:`bucket`), so rows that finished early stop costing compute; padding rows
    enter a round already done. Every row's arithmetic is the plain search's (per-row keys,
    one shared step counter), so the result is the same.

    ``per_row``: host arrays (x, target, row ids, start or None) of the chunk. Returns the
    result on the devices; adds compile and run seconds to ``seconds``.
    """
    x, target, ids, start = per_row
    chunk, max_steps = len(ids), static["max_steps"]
    static = {name: static[name] for name in phases.static}
    replicated = (shared,) * len(common)
    carry = run(
        phases.start_jit, (*common, *per_row, *options), replicated + (batch,) * 4 + (shared, shared), static, seconds
    )
    mask = _per_row_leaves(phases, common, per_row, options, static, n_devices)
    carry_places = jax.tree_util.tree_map(lambda per: batch if per else shared, mask)
    carry = jax.tree_util.tree_map(np.array, jax.device_get(carry))  # writable host copies, filled round by round
    rounds = replicated + (batch,) * 3 + (shared, shared, carry_places, shared)
    while int(carry[0]) < max_steps:
        running = np.flatnonzero(~carry[3].all(axis=1))
        if running.size == 0:
            break
        size = bucket(running.size, chunk, n_devices)
        take = np.concatenate([running, np.repeat(running[:1], size - running.size)])
        subset = jax.tree_util.tree_map(lambda a, per: a[take] if per else a, carry, mask)
        subset[3][running.size :] = True  # padding rows are done from the start
        until = np.int32(min(int(carry[0]) + round_steps, max_steps))
        args = (*common, x[take], target[take], ids[take], *options, subset, until)
        out = jax.device_get(run(phases.round_jit, args, rounds, static, seconds))
        carry = jax.tree_util.tree_map(
            lambda full, new, per: scatter(full, running, new) if per else np.array(new), carry, out, mask
        )
    return run(phases.finish_jit, (*common, x, target, ids, *options, carry), rounds[:-1], static, seconds)

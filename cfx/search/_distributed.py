"""Multi-process search: :func:`cfx.generate` over every device of every process.

Under ``jax.distributed.initialize(...)`` each process calls ``cfx.generate`` with its own
share of the factuals (its own ``x``, ``target`` and optional start array, any number of rows
≥ 1 each) and the same generator, classifier, constraints, key and options. One search then
runs over the global 1-D ``"batch"`` mesh (all devices of all processes, grouped by process)
and every process gets its own rows back. The helpers here are the host-side steps:

1. :func:`resolve_mode` — multi-process or local (``multiprocess=None``: automatic);
2. :func:`mesh_devices` / :func:`check_devices` — the mesh's devices, checked;
3. :func:`agree` — one small allgather: every process's row count (so the row ids that seed
   per-row randomness are global: process p's rows are ``offset_p + arange(n_p)``, where
   ``offset_p`` counts the rows of lower-ranked processes), and a check that the processes
   agree on everything that shapes the compiled program or its replicated inputs;
4. :func:`global_rows` / :func:`replicate` — global ``jax.Array`` s from process-local data;
5. :func:`local_rows` — each process's rows taken back from a global result.

Every process pads its share to the largest share (padded chunks of one shape), so the
combined result equals a single-process search over the concatenated factuals. The search's
``all(done)`` early exit is a global reduction: on CPU it runs over gloo collectives (jax's
default ``jax_cpu_collectives_implementation``); GPU and TPU use their own.

A process whose inputs fail :func:`cfx.generate`'s checks still takes part in the allgather
(see :func:`agree_on_errors`), so the other processes raise too instead of waiting for it.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import dataclasses
import functools
import hashlib
from typing import Any, Sequence

import jax
import numpy as np

AXIS = "batch"

# The fields every process sends in :func:`agree` (int32 each); status 0 marks a process that
# failed its input checks. The options that shape the compiled program must agree everywhere.
_FIELDS = (
    "status",
    "rows",
    "features",
    "num_counterfactuals",
    "max_steps",
    "batch_size",
    "devices_per_process",
    "return_path",
    "loop",
    "mesh_hash",
    "values_hash_0",
    "values_hash_1",
)
_MUST_AGREE = (
    "features",
    "num_counterfactuals",
    "max_steps",
    "batch_size",
    "devices_per_process",
    "return_path",
    "loop",
    "mesh_hash",
)


# ============================================================================ mode and devices
def resolve_mode(multiprocess: bool | None) -> bool:
    """Whether this call searches over all processes.

    ``None``: yes when ``jax.process_count() > 1``; ``True``: required (raises unless
    ``jax.distributed`` is initialised); ``False``: this process's devices and rows only.
    """
    if multiprocess is not None and not isinstance(multiprocess, (bool, np.bool_)):
        raise TypeError(f"multiprocess must be True, False or None (automatic); got {multiprocess!r}")
    if multiprocess is None:
        on = jax.process_count() > 1
    elif not multiprocess:
        return False
    else:
        if not jax.distributed.is_initialized():
            raise ValueError(
                "multiprocess=True needs JAX initialised for several processes: call "
                "jax.distributed.initialize(coordinator_address=..., num_processes=..., process_id=...) "
                "on every process (on a TPU pod or under SLURM with no arguments) before cfx.generate; "
                "use multiprocess=None to search locally when it is not"
            )
        on = True
    if on:
        _mark_collective()
    return on


def mesh_devices(devices: Sequence[jax.Device] | None, multiprocess: bool) -> list:
    """The devices of the 1-D ``"batch"`` mesh, checked: default ``jax.devices()`` (multi-process)
    or ``jax.local_devices()``; in multi-process mode grouped by process, so each process's
    rows are one contiguous block of the global batch."""
    if devices is None:
        return _by_process(jax.devices()) if multiprocess else list(jax.local_devices())
    return check_devices(
        devices, multiprocess=multiprocess, process_index=jax.process_index(), process_count=jax.process_count()
    )


def check_devices(devices, *, multiprocess: bool, process_index: int, process_count: int) -> list:
    """``devices`` as a list that forms the requested mesh, or an error naming ``devices``.

    They must be distinct devices of one platform; locally, this process's own; in
    multi-process mode, the same number on every process (each process holds an equal slice).
    """
    if isinstance(devices, (str, bytes)) or not isinstance(devices, collections.abc.Iterable):
        raise TypeError(f"devices must be a sequence of jax devices (e.g. jax.local_devices()); got {devices!r}")
    devices = list(devices)
    if not devices:
        raise ValueError("devices must name at least one device")
    for device in devices:
        if not all(hasattr(device, attr) for attr in ("id", "platform", "process_index")):
            raise TypeError(f"devices must be jax devices (e.g. jax.local_devices()); got {device!r}")
    seen = collections.Counter((d.platform, d.process_index, d.id) for d in devices)
    twice = [key for key, count in seen.items() if count > 1]
    if twice:
        raise ValueError(
            f"devices lists a device more than once ({_name(twice[0])}); each device holds one slice of "
            "the 1-D 'batch' mesh"
        )
    platforms = sorted({d.platform for d in devices})
    if len(platforms) > 1:
        raise ValueError(f"devices mixes platforms {platforms}; the mesh needs devices of one platform")
    if not multiprocess:
        foreign = [d for d in devices if d.process_index != process_index]
        if foreign:
            raise ValueError(
                f"devices includes {foreign[0]} of process {foreign[0].process_index}; a local search "
                f"(multiprocess=False, or JAX not initialised for several processes) runs on this "
                f"process's devices only (jax.local_devices()); pass multiprocess=True to search over "
                "the devices of every process"
            )
        return devices
    per_process = collections.Counter(d.process_index for d in devices)
    counts = [per_process.get(p, 0) for p in range(process_count)]
    if len(set(counts)) > 1 or set(per_process) - set(range(process_count)):
        raise ValueError(
            f"devices must give every process the same number of devices in multi-process mode (each "
            f"process holds an equal slice of the 'batch' mesh); got {counts} devices for processes "
            f"0..{process_count - 1} (to search on this process's devices only, pass multiprocess=False)"
        )
    return _by_process(devices)


def _by_process(devices) -> list:
    return sorted(devices, key=lambda d: d.process_index)  # stable: keeps each process's own order


def _name(key) -> str:
    platform, process, ident = key
    return f"{platform} device {ident} of process {process}"


# ============================================================================ agreeing on rows
@dataclasses.dataclass(frozen=True)
class Share:
    """How the factuals are split: ``counts[p]`` rows on process p; this is process ``process``."""

    counts: tuple[int, ...]
    process: int

    @property
    def rows(self) -> int:
        """This process's row count."""
        return self.counts[self.process]

    @property
    def offset(self) -> int:
        """Global id of this process's first row: the rows held by lower-ranked processes."""
        return sum(self.counts[: self.process])

    @property
    def most(self) -> int:
        """The largest share; every process pads to it, so all run chunks of one shape."""
        return max(self.counts)

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def processes(self) -> int:
        return len(self.counts)


def agree(
    n: int,
    devices: Sequence,
    *,
    values: Any,
    features: int,
    num_counterfactuals: int,
    max_steps: int,
    batch_size: int | None,
    return_path: bool,
    loop: str,
) -> Share:
    """Every process's row count, in one allgather, and a check that the processes agree.

    ``values`` is the PyTree every process must hold identically (generator, classifier,
    constraints, key): its fingerprint is compared, since the search replicates it without
    copying it between processes. Raises (on every process alike) if any process failed its
    checks or the processes disagree.
    """
    mesh = [(d.process_index, d.id) for d in devices]
    local = dict(
        status=1,
        rows=n,
        features=features,
        num_counterfactuals=num_counterfactuals,
        max_steps=max_steps,
        batch_size=batch_size or 0,
        devices_per_process=len(devices) // max(1, jax.process_count()),
        return_path=int(return_path),
        loop=int(loop == "scan"),
        mesh_hash=_digest(repr(mesh).encode())[0],
    )
    local["values_hash_0"], local["values_hash_1"] = _fingerprint(values)
    table = _gather([local[f] for f in _FIELDS])
    column = {f: [int(v) for v in table[:, i]] for i, f in enumerate(_FIELDS)}
    failed = [p for p, ok in enumerate(column["status"]) if not ok]
    if failed:
        raise ValueError(
            f"cfx.generate: process(es) {failed} rejected their inputs (see the error on those processes); "
            "every process must pass the input checks for a multi-process search to run"
        )
    for field in _MUST_AGREE:
        if len(set(column[field])) > 1:
            shown = "the devices (or their order)" if field == "mesh_hash" else field
            values_by_process = "" if field == "mesh_hash" else f": {column[field]} on processes 0..{len(table) - 1}"
            raise ValueError(
                f"cfx.generate: the processes disagree on {shown}{values_by_process}; every process must "
                "call generate with the same options and a row share of the same feature count"
            )
    if len({(a, b) for a, b in zip(column["values_hash_0"], column["values_hash_1"])}) > 1:
        raise ValueError(
            "cfx.generate: the generator, classifier, constraints or key differ between processes; every "
            "process must pass identical ones (same seed, same parameters; broadcast them, e.g. with "
            "jax.experimental.multihost_utils.broadcast_one_to_all)"
        )
    return Share(tuple(column["rows"]), jax.process_index())


def _gather(vector) -> np.ndarray:
    """(processes, len(vector)) int32: every process's vector, by process index."""
    from jax.experimental import multihost_utils

    _mark_agreed()
    return np.asarray(multihost_utils.process_allgather(np.asarray(vector, np.int32)))


def _digest(data: bytes) -> tuple[int, int]:
    return tuple(int(v) for v in np.frombuffer(hashlib.blake2b(data, digest_size=8).digest(), np.int32))


def _fingerprint(tree) -> tuple[int, int]:
    """A hash of every leaf's dtype, shape and bytes (PRNG keys through their key data)."""
    h = hashlib.blake2b(digest_size=8)
    for leaf in jax.tree_util.tree_leaves(tree):
        if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        arr = np.asarray(leaf)
        h.update(f"{arr.dtype}{arr.shape}".encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return tuple(int(v) for v in np.frombuffer(h.digest(), np.int32))


# ============================================================================ global arrays
def replicate(tree, sharding: jax.sharding.Sharding):
    """Every leaf as a global array replicated over ``sharding``'s mesh (each process supplies
    its own copy; :func:`agree` has checked that the copies are equal)."""
    return jax.tree_util.tree_map(lambda leaf: jax.make_array_from_process_local_data(sharding, leaf), tree)


def global_rows(tree, sharding: jax.sharding.Sharding, share: Share):
    """Global arrays of ``share.processes × m`` rows from this process's ``m`` rows per leaf
    (every process passes blocks of the same ``m``; process p's block is rows p·m … p·m + m − 1)."""

    def one(leaf):
        leaf = np.asarray(leaf)
        return jax.make_array_from_process_local_data(
            sharding, leaf, (share.processes * leaf.shape[0], *leaf.shape[1:])
        )

    return jax.tree_util.tree_map(one, tree)


def local_rows(tree, rows: jax.sharding.NamedSharding, share: Share):
    """This process's block of every row-leading leaf of a global result, as host arrays;
    scalars (replicated, e.g. the threshold) as they are. Leaves that the compiler laid out
    other than by rows or replicated are first resharded by rows (the same decision on every
    process, since it depends only on the global sharding)."""

    def one(leaf):
        if not isinstance(leaf, jax.Array):
            return leaf
        if leaf.ndim == 0:
            return np.asarray(leaf.addressable_data(0))
        if not _rows_local(leaf.sharding):
            leaf = _reshard(rows)(leaf)
        m = leaf.shape[0] // share.processes
        return _stitch(leaf, share.process * m, (share.process + 1) * m)

    return jax.tree_util.tree_map(one, tree)


def _rows_local(sharding) -> bool:
    """True when every process's devices hold its own block of rows: split by rows on the
    process-grouped ``"batch"`` mesh, or replicated."""
    if sharding.is_fully_addressable:
        return True
    if not isinstance(sharding, jax.sharding.NamedSharding) or sharding.mesh.axis_names != (AXIS,):
        return False
    spec = tuple(sharding.spec)
    return all(s is None for s in spec[1:]) and (not spec or spec[0] in (None, AXIS))


@functools.lru_cache(maxsize=8)
def _reshard(rows: jax.sharding.NamedSharding):
    return jax.jit(lambda a: a, out_shardings=rows)


def _stitch(leaf: jax.Array, lo: int, hi: int) -> np.ndarray:
    """Rows lo … hi − 1 of ``leaf`` from the shards this process holds."""
    pieces = {}
    for shard in leaf.addressable_shards:
        start, stop, _ = shard.index[0].indices(leaf.shape[0]) if shard.index else (0, leaf.shape[0], 1)
        a, b = max(start, lo), min(stop, hi)
        if a < b and a not in pieces:
            pieces[a] = np.asarray(shard.data)[a - start : b - start]
    parts, position = [], lo
    for a in sorted(pieces):
        piece = pieces[a]
        if a + len(piece) <= position:
            continue
        if a > position:
            break
        parts.append(piece[position - a :])
        position = a + len(piece)
    if position < hi:  # cannot happen for a rows-split or replicated leaf on a process-grouped mesh
        raise RuntimeError(f"rows {position}..{hi - 1} of a result leaf are not held by process {jax.process_index()}")
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


# ============================================================================ failing together
# One record per collective call in flight (a context variable, so threads do not mix them).
_CALL: contextvars.ContextVar[dict | None] = contextvars.ContextVar("cfx_distributed_call", default=None)


def _mark_collective() -> None:
    call = _CALL.get()
    if call is not None:
        call["collective"] = True


def _mark_agreed() -> None:
    call = _CALL.get()
    if call is not None:
        call["agreed"] = True


def agree_on_errors(fn):
    """Decorate a collective entry point (``cfx.generate``): if this process raises after
    :func:`resolve_mode` chose multi-process mode but before :func:`agree`, it still joins the
    agreement's allgather with a failure flag, so the other processes raise at once instead of
    waiting for a process that will never come. The original error is re-raised."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        call = {"collective": False, "agreed": False}
        token = _CALL.set(call)
        try:
            return fn(*args, **kwargs)
        except Exception:
            if call["collective"] and not call["agreed"]:
                # the peers may be gone already: then the original error is the one to see
                with contextlib.suppress(Exception):
                    _gather([0] * len(_FIELDS))
            raise
        finally:
            _CALL.reset(token)

    return wrapper

"""The results store of an experiment: atomic writes, records keyed by any path, resume.

A record is a JSON mapping plus, optionally, a compressed ``.npz`` of arrays and one binary
blob (e.g. flax msgpack parameters), filed under a path of names::

    store.save(("cells", "moons", "mlp", "wachter", "run000"), {"metrics": ...}, arrays={"x": x})
    store.save(("rounds", "r010"), {"mmd": 0.1})          # a dynamics round
    store.save(("epochs", "e005"), {"loss": 0.3}, blob=params_bytes)
    store.done(("rounds", "r010"))  -> True
    store.load(("rounds", "r010"))  -> {"mmd": 0.1}

Files: ``<root>/<p1>/.../<pn>.json`` (+ ``.npz``, ``.msgpack``). Every file is written to a
temporary name in the same folder and moved into place with ``os.replace`` (atomic on
POSIX), so an interrupted run never leaves a half-written file; the JSON is written last, so
a record counts as done only once all of it is on disk.

The folder itself::

    .cfx-results        marker: this folder was written by cfx (others are never touched)
    config.yaml         the resolved config; a folder holding another experiment is refused
    environment.json    cfx / JAX versions, backend, devices, python, platform, sessions
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

__all__ = [
    "Store",
    "OutputExistsError",
    "MARKER",
    "CONFIG_FILE",
    "write_bytes",
    "write_text",
    "write_json",
    "read_json",
    "environment",
    "run_name",
]

MARKER = ".cfx-results"
RESULTS_FORMAT = 2  # 1: the marker had no format line; 2: format line, the environment's PRNG/x64/XLA_FLAGS
CONFIG_FILE = "config.yaml"
_PART_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")

RecordPath = Sequence[str]


class OutputExistsError(FileExistsError):
    """The output folder holds something this run must not overwrite."""


def run_name(run: int) -> str:
    """The path part of run ``r``: ``run000``."""
    return f"run{int(run):03d}"


# --------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _atomic(path: Path, mode: str = "wb") -> Iterator[Any]:
    """Open a temp file next to ``path``; on success fsync and ``os.replace`` it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt included: never leave the temp file behind
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file, then a rename)."""
    with _atomic(Path(path), "wb") as fh:
        fh.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file, then a rename)."""
    with _atomic(Path(path), "w") as fh:
        fh.write(text)


def _json_default(o):
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (NumPy scalars and arrays as numbers and lists)."""
    # NaN is kept (Python's json reads it back); repr-exact floats make resumed tables identical
    write_text(path, json.dumps(obj, indent=1, default=_json_default, allow_nan=True) + "\n")


def _npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items() if v is not None})
    return buf.getvalue()


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value stored at ``path``."""
    return json.loads(Path(path).read_text())


# --------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------


def _check_written_by_this_cfx(root: Path) -> None:
    """Refuse to continue a folder another cfx wrote: its records may differ in layout or value."""
    lines = (root / MARKER).read_text().splitlines()
    found = next((int(line.split()[1]) for line in lines[1:] if line.startswith("format ")), 1)
    saved = {}
    with contextlib.suppress(Exception):
        saved = read_json(root / "environment.json")
    import cfx

    version = saved.get("cfx")
    if found != RESULTS_FORMAT or (version is not None and version != cfx.__version__):
        raise OutputExistsError(
            f"output folder {root} was written by another cfx (cfx {version or 'unknown'}, results format {found}; "
            f"this is cfx {cfx.__version__}, format {RESULTS_FORMAT}); its records are not mixed with this "
            "version's. Use --force to delete it and start over, or --out to write elsewhere."
        )


def environment() -> dict:
    """Versions and hardware a run used: cfx, JAX, flax, optax, numpy, python, backend, devices,
    and what else decides the bits of a result: the PRNG implementation, x64, XLA_FLAGS."""
    import importlib.metadata as md

    def version(pkg):
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return None

    import jax

    import cfx

    return {
        "cfx": getattr(cfx, "__version__", version("cfx")),
        "jax": jax.__version__,
        "jaxlib": version("jaxlib"),
        "flax": version("flax"),
        "optax": version("optax"),
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "prng_impl": str(jax.config.jax_default_prng_impl),
        "x64": bool(jax.config.jax_enable_x64),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _diff(old: Any, new: Any, path: str = "") -> list[str]:
    """Human-readable differences between two plain config mappings."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in list(old) + [k for k in new if k not in old]:
            p = f"{path}.{k}" if path else str(k)
            if k not in new:
                out.append(f"{p}: {old[k]!r} -> (absent)")
            elif k not in old:
                out.append(f"{p}: (absent) -> {new[k]!r}")
            else:
                out += _diff(old[k], new[k], p)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in _diff(a, b, f"{path}[{i}]")]
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"]


# --------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------


class Store:
    """One experiment's output folder: records keyed by paths of names (see the module docstring)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # -- claiming the folder ------------------------------------------------------------
    def claim(
        self,
        config_text: str,
        identity: dict,
        saved_identity: Callable[[Path], dict],
        *,
        resume: bool,
        force: bool,
        expected: Sequence[RecordPath] | None = None,
    ) -> str:
        """Claim the folder for this experiment. Returns ``"new"``, ``"resume"`` or ``"force"``.

        Args:
          config_text: resolved config YAML to save as ``config.yaml``.
          identity: what makes two runs the same experiment (locations excluded).
          saved_identity: maps a saved ``config.yaml`` path to its identity (or raises).
          resume: continue a folder of the *same* experiment (implied when every ``expected``
            record is already done: re-running a finished experiment rebuilds its report).
          force: delete an existing cfx results folder and start over.
          expected: the record paths of a complete run (for the "N of M done" messages).

        Raises:
          OutputExistsError: the folder holds a different experiment (without ``force``), this
            experiment but neither ``resume`` nor ``force``, or files cfx did not write.
        """
        root = self.root
        if root.exists() and not root.is_dir():
            raise OutputExistsError(f"output path {root} exists and is not a folder")
        existing = list(root.iterdir()) if root.exists() else []
        mode = "new"
        if existing:
            if not (root / MARKER).exists():
                raise OutputExistsError(
                    f"output folder {root} is not empty and was not written by cfx; refusing to touch it. "
                    "Choose another folder with --out."
                )
            if force:
                shutil.rmtree(root)
                mode = "force"
            else:
                _check_written_by_this_cfx(root)
                try:
                    old = saved_identity(root / CONFIG_FILE)
                except Exception as e:  # unreadable or older format: never treated as this experiment
                    raise OutputExistsError(
                        f"output folder {root} holds results whose {CONFIG_FILE} this version of cfx cannot read "
                        f"({e}).\nRefusing to overwrite it. Use --force to delete it and start over, or --out to "
                        "write elsewhere."
                    ) from None
                if old != identity:
                    listing = "".join(f"\n    {d}" for d in _diff(old, identity)[:12])
                    raise OutputExistsError(
                        f"output folder {root} holds a different experiment (saved config differs:{listing})\n"
                        "Refusing to overwrite it. Use --force to delete it and start over, or --out to write "
                        "elsewhere (--resume only continues the same experiment)."
                    )
                done = None if expected is None else sum(self.done(p) for p in expected)
                if not resume and expected is not None and done == len(expected):
                    resume = True  # finished: nothing to lose, nothing to recompute (--force recomputes)
                if not resume:
                    total = "" if expected is None else f" ({done} of {len(expected)} records finished)"
                    raise OutputExistsError(
                        f"output folder {root} already holds this experiment{total}. "
                        "Use --resume to continue it (finished parts are skipped), or --force to start over."
                    )
                mode = "resume"
        root.mkdir(parents=True, exist_ok=True)
        write_text(root / MARKER, f"cfx results folder\nformat {RESULTS_FORMAT}\n")
        write_text(root / CONFIG_FILE, config_text)
        self._record_session(mode)
        return mode

    def prepare(self, *args, **kwargs) -> str:
        """Deprecated (cfx 0.3 removes it): :meth:`claim`."""
        from cfx import _deprecated

        _deprecated.warn("Store.prepare", "use Store.claim (it claims the folder)")
        return self.claim(*args, **kwargs)

    def _record_session(self, mode: str) -> None:
        path = self.root / "environment.json"
        env = environment()
        sessions = []
        if path.exists():
            with contextlib.suppress(Exception):
                sessions = read_json(path).get("sessions", [])
        sessions.append({"mode": mode, "time": env["time"], "backend": env["backend"]})
        write_json(path, {**env, "sessions": sessions})

    def is_results_folder(self) -> bool:
        """Whether the root holds a cfx results folder (its marker and config)."""
        return (self.root / MARKER).exists() and (self.root / CONFIG_FILE).exists()

    # -- records ------------------------------------------------------------------------
    def _base(self, path: RecordPath) -> Path:
        parts = [str(p) for p in path]
        if not parts or any(not _PART_RE.match(p) or p in (".", "..") for p in parts):
            raise ValueError(f"a record path is a non-empty sequence of names (letters, digits, _ . + -); got {path!r}")
        return self.root.joinpath(*parts)

    def file(self, path: RecordPath, suffix: str) -> Path:
        """The file of record ``path`` with ``suffix`` (".json", ".npz", ".msgpack")."""
        base = self._base(path)
        return base.with_name(base.name + suffix)

    def save(self, path: RecordPath, record: dict, arrays: dict | None = None, blob: bytes | None = None) -> None:
        """Write a record: the arrays (npz) and the blob (msgpack) first, the JSON last."""
        if arrays:
            write_bytes(self.file(path, ".npz"), _npz_bytes(arrays))
        if blob is not None:
            write_bytes(self.file(path, ".msgpack"), blob)
        write_json(self.file(path, ".json"), record)

    def done(self, path: RecordPath) -> bool:
        """Whether the record ``path`` has been saved."""
        return self.file(path, ".json").exists()

    def load(self, path: RecordPath) -> dict:
        """The saved record ``path`` (its JSON)."""
        return read_json(self.file(path, ".json"))

    def load_arrays(self, path: RecordPath) -> dict[str, np.ndarray] | None:
        """The arrays saved with record ``path`` (None if it has none)."""
        p = self.file(path, ".npz")
        if not p.exists():
            return None
        with np.load(p) as z:
            return {k: z[k] for k in z.files}

    def load_blob(self, path: RecordPath) -> bytes | None:
        """The blob of a *done* record (None when the record or its blob is missing)."""
        p = self.file(path, ".msgpack")
        return p.read_bytes() if p.exists() and self.done(path) else None

    def records(self, prefix: RecordPath = ()) -> list[tuple[str, ...]]:
        """Paths of the done records under ``prefix``, sorted."""
        base = self._base(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        out = []
        for p in base.rglob("*.json"):
            rel = p.relative_to(self.root).with_suffix("")
            if rel.parts[0].startswith(".") or rel == Path("environment"):
                continue
            out.append(tuple(rel.parts))
        return sorted(out)

    # -- reports ------------------------------------------------------------------------
    def write_text(self, name: str, text: str) -> Path:
        """Write ``text`` to ``<root>/<name>`` atomically; returns the path."""
        path = self.root / name
        write_text(path, text)
        return path

    def write_table(self, name: str, frame, float_format: str = "%.17g") -> Path:
        """A DataFrame as CSV (17 significant digits by default: floats round-trip exactly)."""
        return self.write_text(name, frame.to_csv(index=False, float_format=float_format))

    def write_figure(self, name: str, png: bytes) -> Path:
        """Write a PNG to ``<root>/figures/<name>.png`` atomically; returns the path."""
        path = self.root / "figures" / f"{name}.png"
        write_bytes(path, png)
        return path

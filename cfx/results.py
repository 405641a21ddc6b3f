"""The results folder of an experiment: atomic writes, one file per finished cell, resume.

Layout (``out/``)::

    .cfx-results                 marker: this folder was written by cfx
    config.yaml                  the resolved config (loads back with cfx.experiment.load_config)
    environment.json             cfx / JAX versions, backend, devices, python, platform, sessions
    models/<data>/<model>/run<r>.msgpack   trained parameters (flax.serialization.to_bytes)
    models/<data>/<model>/run<r>.json      training time, accuracy, factual selection
    models/<data>/<model>/run<r>.npz       2-D only: p(target|x) on a grid + data, for figures
    cells/<data>/<model>/<generator>/run<r>.npz    counterfactuals, factuals, targets, paths
    cells/<data>/<model>/<generator>/run<r>.json   metrics (mean, sd, n) + timings: the "done" marker
    results.csv                  long format: dataset, model, generator, run, metric, value, sd, n
    summary.md / summary.csv     mean ± sd per (dataset, model, generator) and metric
    timings.csv                  per cell: search runtime and compile seconds; per model: training
    figures/*.png

Every file is written to a temporary name in the same folder and moved into place with
``os.replace`` (atomic on POSIX), so an interrupted run never leaves a half-written file;
a cell's JSON is written last, so a cell counts as finished only once all of it is on disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

MARKER = ".cfx-results"
CONFIG_FILE = "config.yaml"


class OutputExistsError(FileExistsError):
    """The output folder holds something this run must not overwrite."""


@dataclasses.dataclass(frozen=True, order=True)
class Cell:
    """One point of the grid: (data set, model, generator, run)."""

    dataset: str
    model: str
    generator: str
    run: int

    @property
    def relpath(self) -> Path:
        return Path("cells") / self.dataset / self.model / self.generator / f"run{self.run:03d}"


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


def write_bytes(path: Path, data: bytes) -> None:
    with _atomic(path, "wb") as fh:
        fh.write(data)


def write_text(path: Path, text: str) -> None:
    with _atomic(path, "w") as fh:
        fh.write(text)


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path: Path, obj: Any) -> None:
    # NaN is kept (Python's json reads it back); repr-exact floats make resumed tables identical
    write_text(path, json.dumps(obj, indent=1, default=_json_default, allow_nan=True) + "\n")


def write_npz(file: Path, /, **arrays) -> None:
    """Compressed npz of the non-None arrays."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items() if v is not None})
    write_bytes(file, buf.getvalue())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


# --------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------


def environment() -> dict:
    """Versions and hardware a run used: cfx, JAX, flax, optax, numpy, python, backend, devices."""
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
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# --------------------------------------------------------------------------------------
# The folder
# --------------------------------------------------------------------------------------


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


class ResultsDir:
    """One experiment's output folder (see the module docstring for the layout)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # -- setting up ---------------------------------------------------------------------
    def prepare(self, config_text: str, identity: dict, saved_identity, *, resume: bool, force: bool,
                n_cells: int | None = None) -> str:
        """Claim the folder for this experiment. Returns ``"new"``, ``"resume"`` or ``"force"``.

        Args:
          config_text: resolved config YAML to save.
          identity: what makes two runs the same experiment (locations excluded).
          saved_identity: function mapping a saved config.yaml path to its identity (or raising).
          resume: continue a folder of the *same* experiment, skipping finished cells (implied
            when every cell of the same experiment is already finished).
          force: delete an existing cfx results folder and start over.

        Raises:
          OutputExistsError: the folder holds a different experiment (without ``force``), this
            experiment but neither ``resume`` nor ``force``, or files cfx did not write.
        """
        root = self.root
        if root.exists() and not root.is_dir():
            raise OutputExistsError(f"output path {root} exists and is not a folder")
        existing = [p for p in root.iterdir()] if root.exists() else []
        mode = "new"
        if existing:
            ours = (root / MARKER).exists()
            if not ours:
                raise OutputExistsError(
                    f"output folder {root} is not empty and was not written by cfx; refusing to touch it. "
                    "Choose another folder with --out."
                )
            if force:
                shutil.rmtree(root)
                mode = "force"
            else:
                cfg_path = root / CONFIG_FILE
                try:
                    old = saved_identity(cfg_path)
                except Exception as e:  # unreadable/old config: treat as a different experiment
                    old = {"<unreadable config.yaml>": str(e)}
                if old != identity:
                    lines = _diff(old, identity)[:12]
                    listing = "".join(f"\n    {d}" for d in lines)
                    raise OutputExistsError(
                        f"output folder {root} holds a different experiment (saved config differs:{listing})\n"
                        "Refusing to overwrite it. Use --force to delete it and start over, or --out to write "
                        "elsewhere (--resume only continues the same experiment)."
                    )
                done = len(self.finished_cells())
                if not resume and n_cells is not None and done == n_cells:
                    # A finished run of the same experiment: nothing to lose, nothing to recompute;
                    # the tables are rebuilt from the saved cells (--force recomputes).
                    resume = True
                if not resume:
                    total = f" of {n_cells}" if n_cells is not None else ""
                    raise OutputExistsError(
                        f"output folder {root} already holds this experiment ({done}{total} cells finished). "
                        "Use --resume to continue it (finished cells are skipped), or --force to start over."
                    )
                mode = "resume"
        root.mkdir(parents=True, exist_ok=True)
        write_text(root / MARKER, "cfx results folder\n")
        write_text(root / CONFIG_FILE, config_text)
        self._record_session(mode)
        return mode

    def _record_session(self, mode: str) -> None:
        path = self.root / "environment.json"
        env = environment()
        sessions = []
        if path.exists():
            with contextlib.suppress(Exception):
                sessions = read_json(path).get("sessions", [])
        sessions.append({"mode": mode, "time": env["time"], "backend": env["backend"]})
        write_json(path, {**env, "sessions": sessions})

    # -- cells --------------------------------------------------------------------------
    def cell_json(self, cell: Cell) -> Path:
        return self.root / cell.relpath.with_suffix(".json")

    def cell_npz(self, cell: Cell) -> Path:
        return self.root / cell.relpath.with_suffix(".npz")

    def is_done(self, cell: Cell) -> bool:
        return self.cell_json(cell).exists()

    def save_cell(self, cell: Cell, record: dict, arrays: dict) -> None:
        """Arrays first, then the JSON record: the JSON's presence means the cell is complete."""
        write_npz(self.cell_npz(cell), **arrays)
        write_json(self.cell_json(cell), {**dataclasses.asdict(cell), **record})

    def load_cell(self, cell: Cell) -> dict:
        return read_json(self.cell_json(cell))

    def load_arrays(self, cell: Cell) -> dict[str, np.ndarray]:
        with np.load(self.cell_npz(cell)) as z:
            return {k: z[k] for k in z.files}

    def finished_cells(self) -> list[Cell]:
        out = []
        for p in sorted((self.root / "cells").glob("*/*/*/run*.json")):
            rel = p.relative_to(self.root / "cells").parts
            with contextlib.suppress(ValueError):
                out.append(Cell(rel[0], rel[1], rel[2], int(rel[3][3:-5])))
        return out

    # -- models -------------------------------------------------------------------------
    def model_base(self, dataset: str, model: str, run: int) -> Path:
        return self.root / "models" / dataset / model / f"run{run:03d}"

    def save_model(self, dataset: str, model: str, run: int, params_bytes: bytes, info: dict,
                   plot_arrays: dict | None = None) -> None:
        base = self.model_base(dataset, model, run)
        write_bytes(base.with_suffix(".msgpack"), params_bytes)
        if plot_arrays:
            write_npz(base.with_suffix(".npz"), **plot_arrays)
        write_json(base.with_suffix(".json"), info)

    def load_model_params(self, dataset: str, model: str, run: int) -> bytes | None:
        p = self.model_base(dataset, model, run).with_suffix(".msgpack")
        info = self.model_base(dataset, model, run).with_suffix(".json")
        return p.read_bytes() if p.exists() and info.exists() else None

    def load_model_info(self, dataset: str, model: str, run: int) -> dict | None:
        p = self.model_base(dataset, model, run).with_suffix(".json")
        return read_json(p) if p.exists() else None

    def load_model_plot(self, dataset: str, model: str, run: int) -> dict | None:
        p = self.model_base(dataset, model, run).with_suffix(".npz")
        if not p.exists():
            return None
        with np.load(p) as z:
            return {k: z[k] for k in z.files}

    # -- tables -------------------------------------------------------------------------
    def write_tables(self, table, summary_md: str, summary_wide, timings) -> None:
        write_text(self.root / "results.csv", table.to_csv(index=False, float_format="%.17g"))
        write_text(self.root / "summary.md", summary_md)
        write_text(self.root / "summary.csv", summary_wide.to_csv(index=False, float_format="%.17g"))
        write_text(self.root / "timings.csv", timings.to_csv(index=False, float_format="%.6g"))

    def figure_path(self, name: str) -> Path:
        return self.root / "figures" / f"{name}.png"


def pooled(means: list[float], sds: list[float], ns: list[int]) -> tuple[float, float, int]:
    """Mean and sample sd of the union of groups given each group's mean, sd (ddof=1) and size.

    mean = Σ n_i m_i / N;  var = (Σ (n_i − 1) s_i² + Σ n_i (m_i − mean)²) / (N − 1).
    Groups with NaN means are skipped; a NaN sd (one value) counts as zero spread.
    """
    rows = [(m, 0.0 if (s is None or math.isnan(s)) else s, n) for m, s, n in zip(means, sds, ns)
            if m is not None and not math.isnan(m) and n > 0]
    if not rows:
        return math.nan, math.nan, 0
    N = sum(n for _, _, n in rows)
    mean = sum(n * m for m, _, n in rows) / N
    if N < 2:
        return mean, math.nan, N
    ss = sum((n - 1) * s * s + n * (m - mean) ** 2 for m, s, n in rows)
    return mean, math.sqrt(max(ss, 0.0) / (N - 1)), N

"""Determinism and crash safety of whole experiments, in fresh processes.

For the benchmark and ct kinds' smoke configs: run A straight through in one process; run B in
another, SIGKILLed at seeded random moments and resumed each time, then finished. For eccco and
dynamics: two straight runs in fresh processes. Every file under a
final name must be readable at every kill point (results are written atomically), and B's
counterfactual arrays and tables must equal A's bit for bit (timing columns aside): the same
config and seed give the same results across processes, whatever interrupted them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMING = re.compile(r"time|second|runtime|compile|elapsed|_s$", re.IGNORECASE)  # train_s, ...: seconds


# the benchmark smoke config, shrunk to one data set and model (its full smoke run is test_cli's)
SHRINK = {
    "benchmark": [
        "--set",
        "data=[{name: moons, n: 200}]",
        "--set",
        "models=[{name: mlp, widths: [8], epochs: 2, batch_size: 64}]",
    ]
}


def _command(kind: str, out: Path) -> list[str]:
    resume = ["--resume"] if out.exists() else []
    return [
        sys.executable,
        "-m",
        "cfx",
        "run",
        str(ROOT / "configs" / f"{kind}_smoke.yaml"),
        "--out",
        str(out),
        "--no-progress",
        *SHRINK.get(kind, []),
        *resume,
    ]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "CFX_DATA_DIR": os.environ.get("CFX_DATA_DIR", str(ROOT / ".."))}


def _every_final_file_is_readable(folder: Path) -> None:
    """No partial or corrupt file under a final name (hidden and temporary names aside)."""
    for path in folder.rglob("*"):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        if path.suffix == ".npz":
            with np.load(path) as arrays:
                [arrays[k] for k in arrays.files]
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".csv":
            pd.read_csv(path)


def _tables(folder: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for path in sorted(folder.rglob("*.csv")):
        if TIMING.search(path.name):
            continue
        frame = pd.read_csv(path)
        frame = frame[[c for c in frame.columns if not TIMING.search(c)]]
        for col in ("metric", "name"):
            if col in frame.columns:
                frame = frame[~frame[col].astype(str).str.contains(TIMING)]
        out[str(path.relative_to(folder))] = frame.reset_index(drop=True)
    return out


def _arrays(folder: Path) -> dict[str, np.ndarray]:
    out = {}
    for path in sorted(folder.rglob("*.npz")):
        with np.load(path) as arrays:
            for k in arrays.files:
                if not TIMING.search(k):
                    out[f"{path.relative_to(folder)}:{k}"] = arrays[k]
    return out


def _assert_same_results(a: Path, b: Path) -> None:
    """B's tables and counterfactual arrays equal A's bit for bit (timing columns aside)."""
    a_tables, b_tables = _tables(a), _tables(b)
    assert a_tables and a_tables.keys() == b_tables.keys()
    for name in a_tables:
        pd.testing.assert_frame_equal(a_tables[name], b_tables[name], check_exact=True, obj=name)
    a_arrays, b_arrays = _arrays(a), _arrays(b)
    assert a_arrays.keys() == b_arrays.keys()
    for name in a_arrays:
        np.testing.assert_array_equal(a_arrays[name], b_arrays[name], err_msg=name)
    env_record = json.loads((b / "environment.json").read_text())
    assert {"jax", "jaxlib", "prng_impl", "xla_flags"} <= env_record.keys()


# Kill-and-resume runs on the kind whose records are cells (benchmark) and on one that trains
# models by the epoch (ct); the two other kinds are checked for determinism across fresh
# processes (their resume is tested in-process: tests/test_dynamics.py, tests/test_eccco_experiment.py).
@pytest.mark.parametrize("kind", ["eccco", "dynamics"])
def test_two_fresh_runs_are_bit_identical(kind, tmp_path):
    env = _env()
    for name in ("a", "b"):
        subprocess.run(_command(kind, tmp_path / name), env=env, check=True, capture_output=True, timeout=600)
    _assert_same_results(tmp_path / "a", tmp_path / "b")


@pytest.mark.parametrize("kind", ["benchmark", "ct"])
def test_killed_and_resumed_run_equals_an_uninterrupted_one_bit_for_bit(kind, tmp_path):
    env = _env()
    started = time.perf_counter()
    subprocess.run(_command(kind, tmp_path / "a"), env=env, check=True, capture_output=True, timeout=600)
    wall = time.perf_counter() - started

    rng = np.random.default_rng(sum(map(ord, kind)))
    kills = 0
    # kill points are fractions of an uninterrupted run's wall time; a later run can be much
    # faster than run A (a warm compile cache, a machine that got quieter), so a B that finishes
    # before its first kill point is removed and tried again, timed against its own wall time
    for _attempt in range(3):
        for fraction in sorted(rng.uniform(0.35, 0.9, size=2)):
            started = time.perf_counter()
            proc = subprocess.Popen(
                _command(kind, tmp_path / "b"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            while proc.poll() is None and time.perf_counter() - started < fraction * wall:
                time.sleep(0.05)
            ended = time.perf_counter()
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=60)
            if (tmp_path / "b").exists():
                _every_final_file_is_readable(tmp_path / "b")
            if not kills:
                break
        if kills:
            break
        wall = ended - started
        shutil.rmtree(tmp_path / "b", ignore_errors=True)
    finish = subprocess.run(_command(kind, tmp_path / "b"), env=env, capture_output=True, text=True, timeout=600)
    assert finish.returncode == 0, finish.stderr[-2000:]

    _assert_same_results(tmp_path / "a", tmp_path / "b")
    assert kills >= 1, f"the run finished before any kill point ({wall:.1f} s): nothing was tested"


@pytest.mark.parametrize("written_by", ["an older results format", "another cfx version"])
def test_a_folder_another_cfx_wrote_is_refused_not_mixed(written_by, tmp_path):
    from cfx.experiments import OutputExistsError, Store
    from cfx.experiments.store import MARKER, read_json, write_json

    store = Store(tmp_path / "r")
    store.claim("a: 1\n", {"a": 1}, lambda p: {"a": 1}, resume=False, force=False)
    store.claim("a: 1\n", {"a": 1}, lambda p: {"a": 1}, resume=True, force=False)  # this cfx: resumes
    if written_by == "an older results format":
        (store.root / MARKER).write_text("cfx results folder\n")
    else:
        write_json(store.root / "environment.json", {**read_json(store.root / "environment.json"), "cfx": "0.0.1"})
    with pytest.raises(OutputExistsError, match=r"written by another cfx .* Use --force"):
        store.claim("a: 1\n", {"a": 1}, lambda p: {"a": 1}, resume=True, force=False)
    assert store.claim("a: 1\n", {"a": 1}, lambda p: {"a": 1}, resume=False, force=True) == "force"


EXPLAIN = """
import sys, numpy as np, pandas as pd, cfx
rng = np.random.default_rng(0)
frame = pd.DataFrame({"age": rng.integers(20, 60, 300), "income": rng.normal(40, 8, 300).round(1),
                      "job": rng.choice(["a", "b", "c"], 300)})
frame["y"] = ((frame["age"] - 40) / 10 + (frame["income"] - 40) / 8 + rng.normal(0, 0.5, 300) > 0).astype(int)
data = cfx.data.from_frame(frame, "y", categorical=["job"])
train, test = cfx.data.train_test(data, seed=0)
clf = cfx.models.fit(train, epochs=20, seed=0)
rows = frame.loc[test.ids][np.asarray(clf.predict(test.X)) == 0].head(8)
for generator, k in (("generic", 1), ("dice", 3)):
    cfx.explain(clf, rows, data=train, generator=generator, num_counterfactuals=k, target=1).to_csv(
        f"{sys.argv[1]}/{generator}.csv")
"""


def test_explain_is_bit_identical_across_fresh_processes(tmp_path):
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        subprocess.run(
            [sys.executable, "-c", EXPLAIN, str(tmp_path / run)],
            env=_env(),
            check=True,
            capture_output=True,
            timeout=300,
        )
    for name in ("generic.csv", "dice.csv"):
        a, b = (tmp_path / "a" / name).read_text(), (tmp_path / "b" / name).read_text()
        assert a == b and len(a.splitlines()) > 8, name

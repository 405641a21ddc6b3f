"""The persistent compilation cache of ``cfx run``: filled by a first run, used by a second;
a folder that cannot be written is a warning, not a failure (--no-compile-cache: test_cli.py).

The runs are real ``cfx`` processes (JAX opens its cache folder once per process), on the
smoke config with one generator. No timing is asserted: hits and writes are counted instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cfx.search import _compile_cache as compile_cache
from cfx.search._compile_cache import OFF, resolve

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "configs" / "quickstart_smoke.yaml")


def _cfx_run(out: Path, *flags: str, env: dict | None = None) -> dict:
    """Run the smoke config in a fresh process; returns environment.json's compile_cache record."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION_CACHE", "CFX_COMPILE"))}
    full_env.update(env or {})
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cfx",
            "run",
            SMOKE,
            "--set",
            "generators=[{name: wachter}]",
            "--out",
            str(out),
            "--force",
            "--no-progress",
            *flags,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=full_env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| cats_dogs | mlp | wachter |" in proc.stdout
    record = json.loads((out / "environment.json").read_text())
    assert record["sessions"][-1]["compile_cache"] == record["compile_cache"]
    return record["compile_cache"]


def _entries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache")) if cache.exists() else []


def test_second_run_loads_every_program_from_the_cache(tmp_path):
    cache, other = tmp_path / "cache", tmp_path / "jax_own"
    first = _cfx_run(tmp_path / "out", "--compile-cache", str(cache))
    entries = _entries(cache)
    assert entries, "the first run wrote nothing to the compilation cache"
    assert first == {"enabled": True, "dir": str(cache), "hits": 0, "writes": len(entries)}

    # a fresh process, the same config: every program comes from the cache, the search's
    # (compiled ahead of time) included; $CFX_COMPILE_CACHE wins over JAX's own variable
    second = _cfx_run(tmp_path / "out", env={"CFX_COMPILE_CACHE": str(cache), "JAX_COMPILATION_CACHE_DIR": str(other)})
    assert second == {"enabled": True, "dir": str(cache), "hits": len(entries), "writes": 0}
    assert _entries(cache) == entries and not other.exists()


def test_where_the_cache_lives(tmp_path):
    home = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert resolve(env=home) == tmp_path / "xdg" / "cfx" / "jax"
    assert resolve(env={}) == Path("~/.cache/cfx/jax").expanduser()
    assert resolve(env={**home, "CFX_COMPILE_CACHE": str(tmp_path / "c")}) == tmp_path / "c"
    assert resolve(tmp_path / "flag", env={"CFX_COMPILE_CACHE": str(tmp_path / "c")}) == tmp_path / "flag"
    for off in ("", "0", "off", "None", "false"):
        assert resolve(env={"CFX_COMPILE_CACHE": off}) is OFF
    assert resolve(tmp_path / "flag", disabled=True) is OFF
    assert resolve(env={"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "j")}) is None  # JAX's own setting stays


def test_unwritable_folder_warns_once_and_runs_without(tmp_path, monkeypatch):
    import jax

    # an earlier in-process `cfx run` of this worker may have set a folder or switched the cache off
    monkeypatch.setattr(compile_cache, "_active", None)
    enabled = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", True)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    try:
        with pytest.warns(UserWarning, match="running without it") as caught:
            status = compile_cache.configure(blocker / "cache")  # fails before JAX is touched
    finally:
        jax.config.update("jax_enable_compilation_cache", enabled)
    assert len(caught) == 1
    assert not status.enabled and status.record()["dir"] is None and "a_file" in status.record()["reason"]

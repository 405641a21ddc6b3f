"""JAX's persistent compilation cache for ``cfx run``: compiled programs kept on disk between runs.

A second ``cfx run`` of the same config (same shapes, same JAX, same machine) loads its
compiled XLA programs from the cache instead of compiling them again. JAX keys every entry
on the program, the compile options, the backend and the JAX / jaxlib versions, so a stale
entry is never used; it is only dead weight (delete the folder at any time).

Where the cache lives, first match wins:

    --no-compile-cache               off (also switches off a cache JAX was given elsewhere)
    --compile-cache DIR              DIR
    $CFX_COMPILE_CACHE               a folder; "", "0", "off", "no", "none" or "false": off
    $JAX_COMPILATION_CACHE_DIR       JAX's own setting, left as it is
    default                          $XDG_CACHE_HOME/cfx/jax, else ~/.cache/cfx/jax

    status = compile_cache.configure(resolve(flag_dir, disabled))   # before anything compiles
    ...                                                              # compile, run
    status.record()  -> {"enabled": True, "dir": "...", "hits": 63, "writes": 2}

JAX only caches programs that took at least ``jax_persistent_cache_min_compile_time_secs``
(1 s by default) to compile. On CPU nearly every program of cfx compiles faster than that,
yet together they are most of a small run's time, so :func:`configure` lowers the limit to
0 (unless ``$JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` or
``$JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES`` say otherwise). Programs compiled ahead of
time (``jax.jit(f).lower(...).compile()``, as :mod:`cfx.search` does) go through the same
cache. JAX reads the folder setting once per process, at the first compilation after it is
set; call :func:`configure` before anything compiles.

The cache is trusted code: never point it at a folder others can write to.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Mapping

__all__ = ["CacheStatus", "default_dir", "resolve", "configure", "ENV", "OFF"]

ENV = "CFX_COMPILE_CACHE"


class _Off:
    def __repr__(self) -> str:
        return "OFF"


OFF = _Off()  # resolve(...) -> OFF: the user switched the cache off
_OFF_WORDS = {"", "0", "off", "no", "none", "false"}

# events JAX records (jax._src.compiler): one per executable loaded from / written to the cache
_HIT = "/jax/compilation_cache/cache_hits"
_WRITE = "/jax/compilation_cache/cache_misses"
_counts = {_HIT: 0, _WRITE: 0}
_lock = threading.Lock()
_listening = False
_active: Path | None = None  # the folder this process handed to JAX (it keeps the first one)


def default_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/cfx/jax``, else ``~/.cache/cfx/jax``."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base).expanduser() / "cfx" / "jax"


def resolve(directory: str | os.PathLike | None = None, disabled: bool = False, env: Mapping[str, str] | None = None):
    """The cache folder asked for: a Path, ``OFF``, or None (keep JAX's own setting, if any).

    Args:
      directory: the ``--compile-cache DIR`` flag.
      disabled: the ``--no-compile-cache`` flag (wins over everything).
      env: the environment (default ``os.environ``): ``CFX_COMPILE_CACHE``, ``XDG_CACHE_HOME``,
        ``JAX_COMPILATION_CACHE_DIR``.
    """
    env = os.environ if env is None else env
    if disabled:
        return OFF
    if directory is not None and str(directory) != "":
        return Path(directory).expanduser()
    if ENV in env:
        value = env[ENV].strip()
        return OFF if value.lower() in _OFF_WORDS else Path(value).expanduser()
    if env.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    return default_dir(env)


@dataclasses.dataclass
class CacheStatus:
    """What :func:`configure` did: ``dir`` is the folder in use (None: no cache) and ``reason``
    why there is none; :meth:`record` adds the hits and writes counted since."""

    dir: Path | None
    reason: str = ""
    _start: tuple[int, int] = (0, 0)

    @property
    def enabled(self) -> bool:
        """Whether a persistent compilation cache directory is in use."""
        return self.dir is not None

    def record(self) -> dict:
        """``{"enabled", "dir", "hits", "writes"}`` (+ ``"reason"`` when off), JSON-ready."""
        if not self.enabled:
            return {"enabled": False, "dir": None, "reason": self.reason}
        with _lock:
            hits, writes = _counts[_HIT] - self._start[0], _counts[_WRITE] - self._start[1]
        return {"enabled": True, "dir": str(self.dir), "hits": hits, "writes": writes}


def _listen() -> None:
    global _listening
    if _listening:
        return
    import jax.monitoring

    def count(event: str, **kwargs) -> None:
        if event in _counts:
            with _lock:
                _counts[event] += 1

    jax.monitoring.register_event_listener(count)
    _listening = True


def _check_writable(path: Path) -> None:
    """Raise OSError unless ``path`` is (or can be made) a folder we can write files into."""
    path.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(prefix=".cfx-probe-", dir=path)
    os.close(fd)
    os.unlink(probe)


def _update(name: str, value) -> None:
    import jax

    jax.config.update(name, value)


def configure(target) -> CacheStatus:
    """Point JAX's persistent compilation cache at ``target`` (from :func:`resolve`).

    ``OFF`` switches the cache off (a folder set through ``$JAX_COMPILATION_CACHE_DIR`` too);
    None keeps JAX's own folder if it has one. A folder that cannot be created or written to
    is not an error: one warning, and the run goes on without a cache. Affects the whole
    process; call it before anything compiles.
    """
    import jax

    global _active
    if target is OFF:
        if jax.config.jax_compilation_cache_dir is not None:
            _update("jax_enable_compilation_cache", False)
        return CacheStatus(None, "switched off")
    if not jax.config.jax_enable_compilation_cache:
        return CacheStatus(None, "switched off by JAX_ENABLE_COMPILATION_CACHE")
    path = Path(jax.config.jax_compilation_cache_dir) if target is None else Path(target)
    if target is None and jax.config.jax_compilation_cache_dir is None:
        return CacheStatus(None, "no folder")
    if _active is not None and path.resolve() != _active.resolve():
        # JAX opens its cache folder once per process; a second folder would be ignored
        warnings.warn(f"this process already uses the compilation cache {_active}; {path} is not used")
        path = _active
    else:
        try:
            _check_writable(path)
        except OSError as e:
            warnings.warn(
                f"cannot use the compilation cache folder {path} ({e.strerror or type(e).__name__}); running without it"
            )
            return CacheStatus(None, f"{path} not writable: {e.strerror or e}")
        _update("jax_compilation_cache_dir", str(path))
        if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
            _update("jax_persistent_cache_min_compile_time_secs", 0.0)
        if "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES" not in os.environ:
            _update("jax_persistent_cache_min_entry_size_bytes", 0)
        _active = path
    _listen()
    with _lock:
        start = (_counts[_HIT], _counts[_WRITE])
    return CacheStatus(path, _start=start)

"""Deprecated names (cfx 0.2 → removed in 0.3): one warning helper, so every alias says the same.

The bottom layer: imports nothing of cfx. Every old name listed in CHANGELOG.md goes through here.
"""

from __future__ import annotations

import functools
import importlib
import warnings


class CfxDeprecationWarning(DeprecationWarning):
    """An old cfx name was used; the message says what to write instead (a DeprecationWarning,
    so ``-W error::DeprecationWarning`` catches it; tests select cfx's own with this class)."""


def warn(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` is deprecated (removed in cfx 0.3) and ``new`` is what to write."""
    warnings.warn(
        f"{old} is deprecated and goes in cfx 0.3: {new} (see CHANGELOG.md)",
        CfxDeprecationWarning,
        stacklevel=stacklevel,
    )


def trace_counter(names: tuple[str, ...]):
    """What a removed trace counter (``trace_count()``) becomes: JAX's traces of the jitted functions
    ``names`` (by their ``__name__``), counted from JAX's monitoring events from the first call on
    (the counter counted from import; callers compare two reads, which this keeps)."""
    seen = []

    def count() -> int:
        if not seen:
            import jax.monitoring

            def listen(event: str, duration: float, **kwargs) -> None:
                if event == "/jax/core/compile/jaxpr_trace_duration" and kwargs.get("fun_name") in names:
                    seen[0] += 1

            seen.append(0)
            jax.monitoring.register_event_duration_secs_listener(listen)
        return seen[0]

    return count


def module_aliases(module_name: str, aliases: dict[str, tuple[str, str]]):
    """A module ``__getattr__`` serving ``old -> (module, new name)`` with a warning."""

    def __getattr__(name):
        if name in aliases:
            where, new = aliases[name]
            warn(f"{module_name}.{name}", f"use {where}.{new}")
            return getattr(importlib.import_module(where), new)
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    return __getattr__


def renamed_keywords(cls, renamed: dict[str, str], label: str | None = None, translate=None):
    """Wrap ``cls.__init__`` so the old keyword names in ``renamed`` (old -> new) still work, with
    a warning (``dataclasses.replace`` goes through ``__init__`` too). An old keyword wins over the
    new one's value: in ``replace(old=v)`` the new name carries the current value. ``translate``
    (kwargs -> kwargs, warning itself) handles renames that depend on the value first."""
    init = cls.__init__
    label = label or cls.__name__

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        if translate is not None:
            kwargs = translate(kwargs)
        for old in [k for k in kwargs if k in renamed]:
            warn(f"{label}({old}=...)", f"write {renamed[old]}=")
            kwargs[renamed[old]] = kwargs.pop(old)
        init(self, *args, **kwargs)

    cls.__init__ = __init__
    return cls


def keyword_only(*names: str):
    """Decorate ``fn(a, b, *, name1=..., ...)`` so that calls still passing ``names`` by position
    (after ``fn``'s positional parameters) work, with a warning saying to name them."""

    def wrap(fn):
        import inspect

        params = inspect.signature(fn).parameters.values()
        n_positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)

        @functools.wraps(fn)
        def call(*args, **kwargs):
            extra = args[n_positional:]
            if extra:
                if len(extra) > len(names):
                    raise TypeError(f"{fn.__name__}() takes {n_positional} positional arguments; got {len(args)}")
                given = ", ".join(f"{k}=" for k in names[: len(extra)])
                warn(
                    f"{fn.__name__}(...) with {given.replace('=', '')} by position",
                    f"name it: {fn.__name__}(..., {given}...)",
                )
                for k, v in zip(names, extra):
                    if k in kwargs:
                        raise TypeError(f"{fn.__name__}() got multiple values for argument {k!r}")
                    kwargs[k] = v
            return fn(*args[:n_positional], **kwargs)

        return call

    return wrap

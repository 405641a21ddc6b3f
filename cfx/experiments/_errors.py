"""Config errors that name the file and the key path: :class:`ConfigError`, :class:`ConfigSource`, key paths, name checks.

Re-exported by :mod:`cfx.experiments.config` (import them from there).
"""

from __future__ import annotations

import os
import re
import typing
from typing import Annotated, Any, Mapping, Sequence

import pydantic

from cfx.experiments.fields import EMPTY_VALUE_HINT, LABEL_RE, got, suggest


class ConfigError(ValueError):
    """A config that cannot be used: names the file, the key path and what was expected."""

    def __init__(self, message: str, *, file: str | os.PathLike | None = None, path: str | None = None):
        self.file = None if file is None else str(file)
        self.path = path
        self.message = message
        where = ": ".join(p for p in (self.file, path) if p)
        super().__init__(f"{where}: {message}" if where else message)


_TOKEN_RE = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def split_path(key: str) -> list[str | int]:
    """``generators[0].cost`` or ``generators.0.cost`` -> ``['generators', 0, 'cost']``."""
    parts: list[str | int] = []
    pos = 0
    key = key.strip()
    for m in _TOKEN_RE.finditer(key):
        if key[pos : m.start()] not in ("", "."):
            raise ValueError(f"cannot parse key path {key!r}")
        name, idx = m.groups()
        parts.append(int(idx) if idx is not None else int(name) if name.isdigit() else name)
        pos = m.end()
    if not parts or key[pos:]:
        raise ValueError(f"cannot parse key path {key!r}")
    return parts


def format_path(parts: Sequence[str | int]) -> str:
    """``['generators', 0, 'cost']`` -> ``generators[0].cost``."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


# --------------------------------------------------------------------------------------
# Validation: pydantic errors -> ConfigError
# --------------------------------------------------------------------------------------


def _join(path: str, loc: Sequence[str | int]) -> str:
    parts = [p for p in loc]
    return format_path(([path] if path else []) + parts) if parts else path


def _fields_at(cls: type, loc: Sequence[str | int]) -> list[str] | None:
    """The field names of the model reached from ``cls`` along ``loc`` (None if not a model)."""
    tp: Any = cls
    for p in loc:
        tp = _strip(tp)
        if isinstance(p, int):
            args = [a for a in typing.get_args(tp) if a is not Ellipsis]
            if not args:
                return None
            tp = args[0]
        elif isinstance(tp, type) and issubclass(tp, pydantic.BaseModel) and p in tp.model_fields:
            tp = tp.model_fields[p].annotation
        else:
            return None
    tp = _strip(tp)
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        return [n for n, f in tp.model_fields.items() if not f.exclude]
    return None


def _strip(tp: Any) -> Any:
    """``Annotated[X | None, ...]`` -> X."""
    while True:
        if typing.get_origin(tp) is Annotated:
            tp = typing.get_args(tp)[0]
            continue
        args = typing.get_args(tp)
        if type(None) in args and len(args) == 2:
            tp = next(a for a in args if a is not type(None))
            continue
        return tp


def _message(
    err: dict, cls: type, allowed: Sequence[str] | None, unknown: str, listing: str, hints: Mapping[str, str]
) -> str:
    kind, loc, value = err["type"], err["loc"], err.get("input")
    if kind in ("value_error", "assertion_error"):
        return str(err["ctx"]["error"])
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        key = loc[-1]
        if len(loc) == 1 and key in hints:
            return hints[key]
        names = (list(allowed) if allowed is not None and len(loc) == 1 else _fields_at(cls, loc[:-1])) or []
        return f"{unknown}{suggest(key, names)}; {listing}: {', '.join(names)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        names = _fields_at(cls, loc)
        keys = f" with keys {', '.join(names)}" if names else ""
        return f"expected a mapping{keys}; got {value!r}"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"must be one of {expected}, got {value!r}"
    if kind == "frozen_instance":
        return "cannot be changed"
    return f"{err['msg']}, got {value!r}"


class ConfigSource:
    """Where a config came from (file, ``--set`` pairs): builds located :class:`ConfigError` s."""

    def __init__(self, file: str | os.PathLike | None = None, overridden: Mapping[str, str] | None = None):
        self.file = None if file is None else str(file)
        self.overridden = dict(overridden or {})

    def error(self, path: str, message: str) -> ConfigError:
        """A ConfigError at ``path``; says which ``--set`` pair put the value there, if one did."""
        src = self.overridden.get(path)
        if src is None:  # the override may have set a parent
            for k, v in self.overridden.items():
                if path.startswith(k + ".") or path.startswith(k + "["):
                    src = v
                    break
        if src is not None:
            message += f" (from --set {src})"
            if not src.split("=", 1)[1].strip():
                message += f"; the value after '=' is empty ({EMPTY_VALUE_HINT})"
        return ConfigError(message, file=self.file, path=path)

    def validate(
        self,
        cls: type[pydantic.BaseModel],
        raw: Any,
        path: str = "",
        *,
        unknown: str = "unknown key",
        allowed: Sequence[str] | None = None,
        listing: str = "allowed keys",
        hints: Mapping[str, str] | None = None,
    ):
        """``cls.model_validate(raw)``, its first problem raised as a ConfigError at ``path``.

        Args:
          unknown: how an unknown key is called ("unknown key", "unknown hyperparameter of ...").
          allowed: the keys to list for an unknown top-level key (default: the model's fields),
            after ``listing`` ("allowed keys").
          hints: top-level keys with their own message (a key that moved elsewhere).
        """
        if not isinstance(raw, Mapping):
            names = list(allowed) if allowed is not None else _fields_at(cls, ()) or []
            raise self.error(path, f"expected a mapping with keys {', '.join(names)}; got {raw!r}")
        try:
            return cls.model_validate(dict(raw))
        except pydantic.ValidationError as e:
            errors = e.errors(include_url=False)
            # an unknown key is usually a typo of a missing one: report the typo
            errors.sort(key=lambda er: er["type"] != "extra_forbidden")
            err = errors[0]
            message = _message(err, cls, allowed, unknown, listing, hints or {})
            raise self.error(_join(path, err["loc"]), message) from None


def check_label(label: str, path: str, ctx: ConfigSource) -> None:
    """A name that becomes a folder: letters, digits and ``_ . + -``."""
    if not LABEL_RE.match(label):
        raise ctx.error(path, f"{label!r} cannot name a results folder; use letters, digits and _ . + -")


def check_name(name: Any, registry: Sequence[str] | None, what: str, path: str, ctx: ConfigSource) -> None:
    """``name`` must be in ``registry`` (None: the registry is unavailable, skip)."""
    if not isinstance(name, str):
        raise ctx.error(path, f"expected a string, {got(name)}")
    if registry is None:
        return
    if name not in registry:
        raise ctx.error(
            path, f"unknown {what} {name!r}{suggest(name, registry)}; available: {', '.join(sorted(registry))}"
        )

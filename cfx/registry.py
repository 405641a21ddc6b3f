"""One registry type for every extension point: data sets, generators, models, metrics, experiment kinds.

A :class:`Registry` maps names to entries (a dict underneath: iterate, ``in``, ``len``,
``dict(r)`` as before). What it adds is one way to extend and to look up:

    MODELS.register("my_net", entry)           # a clash is an error …
    MODELS.register("my_net", entry, replace=True)   # … unless replacing is meant
    MODELS.get("mlp")                          # an unknown name lists the known ones
    MODELS.names(), MODELS.describe()          # sorted names; name -> one line

Names are case-insensitive (stored lower-case); ``aliases`` map extra names to entries.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Generic, Iterable, Mapping, TypeVar

T = TypeVar("T")
_MISSING = object()


class UnknownNameError(ValueError, KeyError):
    """A name no registry entry has; the message lists the known names (a ValueError and a KeyError)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Registry(dict, Generic[T]):
    """Name -> entry for one extension point (``kind`` names it in messages).

    Args:
      kind: what the entries are ("generator", "model", ...), for error messages.
      entries: the initial entries.
      aliases: extra names -> registered names.
      describe: ``entry -> one-line description`` for :meth:`describe` (default: the entry's
        ``description`` attribute, else its docstring's first line).
      check: ``(name, entry) -> None``, raising on an entry this registry cannot hold.
      fold_case: names are case-insensitive (stored lower-case); False: as given (metric names,
        which are the columns they are reported under).
    """

    def __init__(
        self,
        kind: str,
        entries: Mapping[str, T] | Iterable[tuple[str, T]] = (),
        *,
        aliases: Mapping[str, str] | None = None,
        describe: Callable[[T], str] | None = None,
        check: Callable[[str, T], None] | None = None,
        fold_case: bool = True,
    ):
        super().__init__()
        self.kind = kind
        self.fold_case = fold_case
        self.aliases = {self._fold(k): self._fold(v) for k, v in (aliases or {}).items()}
        self._describe = describe
        self._check = check
        for name, entry in dict(entries).items():
            self.register(name, entry)

    def _key(self, name: str) -> str:
        if not isinstance(name, str):
            raise TypeError(f"a {self.kind} name must be a str; got {type(name).__name__}")
        key = self._fold(name)
        return self.aliases.get(key, key)

    def _fold(self, name: str) -> str:
        return name.lower() if self.fold_case else name

    def register(self, name: str, entry: T, *, replace: bool = False) -> T:
        """Add ``entry`` under ``name``; an existing name is an error unless ``replace=True``. Returns the entry."""
        key = self._key(name)
        if key in self and not replace:
            raise ValueError(f"a {self.kind} named {key!r} is already registered; pass replace=True to replace it")
        if self._check is not None:
            self._check(key, entry)
        super().__setitem__(key, entry)
        return entry

    def replace(self, name: str, entry: T) -> T:
        """:meth:`register` with ``replace=True``."""
        return self.register(name, entry, replace=True)

    def __setitem__(self, name: str, entry: T) -> None:  # ``r[name] = entry``: replace, checked
        self.register(name, entry, replace=True)

    def get(self, name: str, default: Any = _MISSING) -> T:
        """The entry of ``name`` (or an alias); unknown: ``default`` if given, else an error listing the names."""
        if default is not _MISSING and not isinstance(name, str):
            return default
        key = self._key(name)
        if key in self:
            return super().__getitem__(key)
        if default is not _MISSING:
            return default
        close = difflib.get_close_matches(key, [*self, *self.aliases], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownNameError(f"unknown {self.kind} {name!r}{hint}; known: {self.names(aliases=True)}")

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, self.aliases.get(self._fold(name), self._fold(name)))

    def names(self, *, aliases: bool = False) -> list[str]:
        """The registered names, sorted (with ``aliases=True``, the aliases after them)."""
        return sorted(self) + (sorted(self.aliases) if aliases else [])

    def describe(self) -> dict[str, str]:
        """Name -> one-line description, in registration order (aliases say what they stand for)."""
        out = {name: self._line(entry) for name, entry in self.items()}
        out.update({alias: f"alias of {target!r}" for alias, target in self.aliases.items()})
        return out

    def _line(self, entry: T) -> str:
        if self._describe is not None:
            return self._describe(entry)
        text = getattr(entry, "description", "") or (getattr(entry, "__doc__", "") or "")
        return text.strip().splitlines()[0] if text.strip() else ""

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


__all__ = ["Registry", "UnknownNameError"]

"""Field types of config schemas: what a YAML value may be, and the "did you mean" hint.

Pydantic does the structure (keys, nesting, defaults, required, frozen); these validators
keep cfx's strictness (no bool for an int, no 1 for true) and its wording. Used by
:mod:`cfx.experiments.config` and every experiment kind's schema.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Callable, Sequence

from pydantic import AfterValidator, BeforeValidator

__all__ = [
    "suggest",
    "Int",
    "Number",
    "Float",
    "Bool",
    "Str",
    "IntList",
    "StrList",
    "PositiveInt",
    "NonNegativeInt",
    "NonNegativeFloat",
    "PositiveFloat",
    "UnitOpen",
    "Probability",
    "Label",
    "choice",
]

# Names researchers reach for when they mean another key.
_SYNONYMS = {
    "lambda": "cost",
    "lamda": "cost",
    "lam": "cost",
    "λ": "cost",
    "weight": "cost",
    "lr": "learning_rate",
    "eta": "learning_rate",
    "steps": "max_steps",
    "k": "num_counterfactuals",
    "tau": "threshold",
}


def suggest(key: Any, allowed: Sequence[str]) -> str:
    """``" (did you mean 'x'?)"`` for a close match or a known synonym of ``key``, else ``""``."""
    allowed = [str(a) for a in allowed]
    guesses = difflib.get_close_matches(str(key), allowed, n=2, cutoff=0.6)
    syn = _SYNONYMS.get(str(key).lower())
    if syn in allowed and syn not in guesses:
        guesses.append(syn)
    if not guesses:
        return ""
    return " (did you mean " + " or ".join(repr(g) for g in guesses) + "?)"


_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
LABEL_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")


#: Said of an empty value: usually `--set key=$VAR` with VAR unset, which the shell expanded to nothing.
EMPTY_VALUE_HINT = "an unset shell variable in --set? quote it: --set 'key=${VAR}'"


#: Said of a value like '${VAR}': configs are not templates, and a quoted --set reaches cfx unexpanded.
PLACEHOLDER_HINT = (
    'cfx does not expand ${...}: write the value itself, or let the shell expand it with --set "key=$VAR"'
)


def got(v: Any) -> str:
    if isinstance(v, str) and not v.strip():
        return f"got an empty string {v!r} ({EMPTY_VALUE_HINT})"
    if isinstance(v, str) and re.search(r"\$\{[^}]*\}|^\$[A-Za-z_]", v):
        return f"got {v!r} (str; {PLACEHOLDER_HINT})"
    return f"got {v!r} ({type(v).__name__})"


def _int(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    raise ValueError(f"expected an integer, {got(v)}")


def _float(v: Any) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str) and _FLOAT_RE.match(v.strip()):  # YAML 1.1 reads 1e-3 as a string
        return float(v)
    raise ValueError(f"expected a number, {got(v)}")


def _number(v: Any) -> int | float:
    """A number, kept an int when it is one."""
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    return _float(v)


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise ValueError(f"expected true or false, {got(v)}")


def _str(v: Any) -> str:
    if isinstance(v, str):
        return v
    raise ValueError(f"expected a string, {got(v)}")


def _list_of(what: str) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return v
        raise ValueError(f"expected a list of {what}, got {v!r}")

    return check


def _bound(test: Callable[[Any], bool], text: str) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if not test(v):
            raise ValueError(f"{text}, got {v!r}")
        return v

    return check


def _label(v: str) -> str:
    if not LABEL_RE.match(v):
        raise ValueError(f"{v!r} cannot name a results folder; use letters, digits and _ . + -")
    return v


def choice(allowed: Sequence[str] | Callable[[], Sequence[str] | None]) -> AfterValidator:
    """A validator: the value must be one of ``allowed`` (or of what the loader returns; a
    loader returning None skips the check)."""

    def check(v: Any) -> Any:
        names = allowed() if callable(allowed) else allowed
        if names is None or v in names:
            return v
        raise ValueError(f"must be one of {', '.join(map(repr, names))}{suggest(v, names)}, got {v!r}")

    return AfterValidator(check)


Int = Annotated[int, BeforeValidator(_int)]
Number = Annotated[float, BeforeValidator(_number)]
Float = Annotated[float, BeforeValidator(_float)]
Bool = Annotated[bool, BeforeValidator(_bool)]
Str = Annotated[str, BeforeValidator(_str)]
IntList = Annotated[tuple[Int, ...], BeforeValidator(_list_of("int"))]
StrList = Annotated[tuple[Str, ...], BeforeValidator(_list_of("str"))]
PositiveInt = Annotated[Int, AfterValidator(_bound(lambda v: v > 0, "must be > 0"))]
NonNegativeInt = Annotated[Int, AfterValidator(_bound(lambda v: v >= 0, "must be >= 0"))]
PositiveFloat = Annotated[Float, AfterValidator(_bound(lambda v: v > 0, "must be > 0"))]
NonNegativeFloat = Annotated[Float, AfterValidator(_bound(lambda v: v >= 0, "must be >= 0"))]
UnitOpen = Annotated[Float, AfterValidator(_bound(lambda v: 0.0 < v < 1.0, "must be in (0, 1)"))]
Probability = Annotated[Float, AfterValidator(_bound(lambda v: 0.0 < v <= 1.0, "must be in (0, 1]"))]
Label = Annotated[Str, AfterValidator(_label)]

"""The typed schema of a generator's hyperparameters in a config: :func:`hyperparams` checks every key and value type.

Re-exported by :mod:`cfx.experiments.sections` (import it from there).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Annotated, Any, Mapping

import pydantic

from cfx.experiments.config import (
    Bool,
    ConfigSource,
    Float,
    NonNegativeInt,
    Number,
    PositiveFloat,
    PositiveInt,
    Probability,
    Str,
    choice,
)


def _loader(module: str, *attrs: str):
    def load():
        try:
            import importlib

            return tuple(name for attr in attrs for name in getattr(importlib.import_module(module), attr))
        except (ImportError, AttributeError):
            return None

    return load


def _non_negative(v):
    if not v >= 0:
        raise ValueError(f"must be >= 0, got {v!r}")
    return v


# Search defaults and step-rule options every generator has: their own ranges and choices.
_SHARED_FIELDS: dict[str, Any] = {
    "threshold": Probability,
    "num_counterfactuals": PositiveInt,
    "min_steps": NonNegativeInt,
    "start_scale": Annotated[Float, pydantic.AfterValidator(_non_negative)],
    "learning_rate": PositiveFloat,
    "start": Annotated[Str, choice(_loader("cfx.generators", "STARTS"))],
    "convergence": Annotated[Str, choice(_loader("cfx.generators", "CONVERGENCE"))],
    "optimizer": Annotated[Str, choice(_loader("cfx.generators", "OPTIMIZERS"))],
    "yloss": Annotated[Str, choice(_loader("cfx.terms", "YLOSSES", "CONTEXT_YLOSSES"))],
}


def _numbers(v):
    """A number or a (nested) list of numbers (array-valued hyperparameters)."""
    ok = (isinstance(v, (int, float)) and not isinstance(v, bool)) or (
        isinstance(v, (list, tuple))
        and all((isinstance(x, (int, float)) and not isinstance(x, bool)) or isinstance(x, (list, tuple)) for x in v)
    )
    if not ok:
        raise ValueError(f"expected a number (or list of numbers), got {v!r}")
    return v


def _list_or_number(v):
    if not isinstance(v, (list, tuple, int, float)) or isinstance(v, bool):
        raise ValueError(f"expected a list or a number, got {v!r}")
    return v


def _field_type(key: str, default: Any):
    """The config type of a generator hyperparameter, from its name or its default's type."""
    if key in _SHARED_FIELDS:
        return _SHARED_FIELDS[key]
    if default is None or default is dataclasses.MISSING:
        return Any
    if isinstance(default, bool):
        return Bool
    if isinstance(default, int):
        return Number  # a weight may default to 1 and be set to 0.5
    if isinstance(default, float):
        return Float
    if isinstance(default, str):
        return Str
    if isinstance(default, (tuple, list)):
        return Annotated[Any, pydantic.BeforeValidator(_list_or_number)]
    if type(default).__module__.split(".")[0] in ("numpy", "jax", "jaxlib"):
        return Annotated[Any, pydantic.BeforeValidator(_numbers)]
    return Any


@functools.lru_cache(maxsize=None)
def _hyperparameter_model(name: str) -> tuple[type[pydantic.BaseModel], tuple[str, ...]]:
    """A pydantic model of the settable keys of generator ``name`` (and their names)."""
    import cfx.generators

    defaults = cfx.generators.hyperparameters(name)
    fields = {k: (_field_type(k, v) | None, None) for k, v in defaults.items()}
    model = pydantic.create_model(f"{name}_hyperparameters", __config__=pydantic.ConfigDict(extra="forbid"), **fields)
    return model, tuple(sorted(defaults))


def _renamed_hyperparams(name: str, raw: Mapping, path: str) -> Mapping:
    """Generator keys renamed in cfx 0.2 (``init`` -> ``start``, ``init_scale`` -> ``start_scale``,
    REVISE's ``start: sample`` -> ``latent_start``), read with a warning (cfx 0.3 refuses them)."""
    from cfx import _deprecated
    from cfx.generators.base import RENAMED_FIELDS

    out = dict(raw)
    if out.get("start") in ("mean", "sample") and "latent_start" in _hyperparameter_model(name)[1]:
        _deprecated.warn(f"{path}.start: {out['start']}", f"write latent_start: {out['start']}")
        out["latent_start"] = out.pop("start")
    for old, new in RENAMED_FIELDS.items():
        if old in out:
            _deprecated.warn(f"{path}.{old}", f"write {new}: (the generator's field was renamed)")
            out[new] = out.pop(old)
    return out


def hyperparams(name: str, raw: Mapping, path: str, ctx: ConfigSource, coerce: bool = True) -> dict:
    """The hyperparameters ``raw`` of generator ``name``, each key and value type checked; the
    validated values (``coerce``: a float field's 1 becomes 1.0) or those of ``raw``."""
    model, keys = _hyperparameter_model(name)
    raw = _renamed_hyperparams(name, raw, path)
    hp = ctx.validate(
        model,
        dict(raw),
        path,
        unknown=f"unknown hyperparameter of generator {name!r}",
        allowed=[*keys, "label"],
        listing="allowed",
    )
    return hp.model_dump(exclude_unset=True) if coerce else dict(raw)

"""The ``ct`` section of a ``kind: ct`` config: counterfactual training's own settings
(:class:`cfx.training.CTConfig`'s fields) and the generator its search runs
(``CTConfig.generator``), named as a generator item::

    ct:
      n_ce: 1000
      max_steps: 30
      generator: {name: ecco, learning_rate: 0.25, cost: 0.001, energy: 5.0, ridge: 0.0, threshold: 0.5,
                  convergence: threshold, decay_schedule: exponential}

``generator.name`` is checked against the generator registry: CT's search is ECCo (each epoch
is compiled for it), so it names a registered entry of that class; its other keys are ECCo
hyperparameters, those CT's search sets (:data:`GENERATOR_FIELDS`; ``decay_schedule: polynomial``
takes CE.jl's schedule for ``max_steps`` steps, :func:`search_generator`). The same keys written
flat in ``ct`` under CTConfig's 0.1 names (``stop`` for ``convergence``, ``energy_decay`` for
``decay_schedule``) still work and warn (DeprecationWarning).
"""

from __future__ import annotations

import dataclasses
import typing
import warnings
from typing import Annotated, Any, Mapping

import pydantic

from cfx.experiments.config import (
    Bool,
    PositiveFloat,
    PositiveInt,
    Probability,
    Spec,
    Str,
    check_name,
    choice,
    got,
    plain,
)
from cfx.experiments.fields import NonNegativeFloat
from cfx.experiments.sections import registry

#: ECCo hyperparameter (the key under ``ct.generator``) -> its flat name in ``ct`` before 0.2 (CTConfig's 0.1 field).
GENERATOR_FIELDS = {
    "learning_rate": "learning_rate",
    "cost": "cost",
    "energy": "energy",
    "ridge": "ridge",
    "threshold": "threshold",
    "convergence": "stop",
    "decay_schedule": "energy_decay",
}
_FLAT = {field: key for key, field in GENERATOR_FIELDS.items()}  # the deprecated flat ct.<field> -> its key


def _settings_type(field: dataclasses.Field, hint):
    """The config type of a :class:`cfx.training.CTConfig` field: by name, else by its default's
    type (a weight is a number >= 0), else its annotation ``hint``."""
    by_name = {"n_ce": PositiveInt, "max_steps": PositiveInt, "domain_sd": PositiveFloat | None}
    by_default = ((bool, Bool), (int, PositiveInt), (float, NonNegativeFloat), (str, Str))
    if field.name in by_name:
        return by_name[field.name]
    return next((t for kind, t in by_default if type(field.default) is kind), hint)


def _ct_fields() -> dict[str, tuple[Any, Any]]:
    """CTConfig's fields as ``name -> (config type, default)``, but those the run sets per variant
    and mode (variant, protected, schema_mutability) and per data set (domain), and the generator."""
    from cfx.training.config import CTConfig

    hints = typing.get_type_hints(CTConfig)
    return {
        f.name: (_settings_type(f, hints[f.name]), f.default)
        for f in dataclasses.fields(CTConfig)
        if f.name not in ("variant", "protected", "schema_mutability", "domain", "generator")
    }


def _generator_fields() -> dict[str, tuple[Any, Any]]:
    """The keys of :data:`GENERATOR_FIELDS` as ``key -> (config type, ECCo's default)``."""
    from cfx.generators import hyperparameters
    from cfx.training.config import DECAYS, STOPS

    types = {
        "learning_rate": PositiveFloat,
        "cost": NonNegativeFloat,
        "energy": NonNegativeFloat,
        "ridge": NonNegativeFloat,
        "threshold": Probability,
        "convergence": Annotated[Str, choice(STOPS)],
        "decay_schedule": Annotated[Str, choice(DECAYS)],
    }
    defaults = hyperparameters("ecco")
    return {key: (types[key], defaults[key]) for key in GENERATOR_FIELDS}


def _generator_spec() -> type[Spec]:
    """``CTGeneratorSpec``: ``name`` and the ECCo hyperparameters CT's search sets, with ECCo's defaults."""
    model = pydantic.create_model("CTGeneratorSpec", __base__=Spec, name=(Str, "ecco"), **_generator_fields())
    model.__doc__ = (
        "CT's search generator: a registered ECCo (``name``) and the hyperparameters CT's search sets "
        "(ECCo's defaults)."
    )
    return model


CTGeneratorSpec = _generator_spec()


class _CTSettingsBase(Spec):
    def ct_fields(self) -> dict:
        """The keyword arguments of :class:`cfx.training.CTConfig`, ``generator`` still its config item
        (a mapping; :func:`search_generator` builds it)."""
        return self.model_dump()


for _field, _key in _FLAT.items():  # read-only: cfg.ct.cost is cfg.ct.generator.cost (the 0.1 names)
    setattr(
        _CTSettingsBase,
        _field,
        property(lambda self, k=_key: getattr(self.generator, k), doc=f"``generator.{_key}`` under its 0.1 name"),
    )


def search_generator(item: Mapping, max_steps: int):
    """CT's search generator from its config item ``{name, <GENERATOR_FIELDS>}``:
    ``cfx.generators.make(name, ...)``; ``decay_schedule: polynomial`` takes CE.jl's schedule for
    T = ``max_steps`` steps (:func:`cfx.generators.eccco.polynomial_schedule`)."""
    import cfx.generators
    from cfx.generators.eccco import polynomial_schedule

    hyper = {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in item.items() if k != "name"}
    if hyper.get("decay_schedule") == "polynomial":
        hyper.update(polynomial_schedule(max_steps))
    return cfx.generators.make(item.get("name", "ecco"), **hyper)


def _settings() -> type[Spec]:
    """``CTSettings``: CTConfig's own fields (:func:`_ct_fields` but the generator's) and ``generator``."""
    fields = {k: v for k, v in _ct_fields().items() if k not in _FLAT}
    model = pydantic.create_model(
        "CTSettings", __base__=_CTSettingsBase, **fields, generator=(CTGeneratorSpec, CTGeneratorSpec())
    )
    model.__doc__ = (
        "Fields of :class:`cfx.training.CTConfig` (except variant and protected) with its defaults, and "
        "``generator``: CT's search generator (:class:`CTGeneratorSpec`)."
    )
    return model


CTSettings = _settings()


def _generator_class(name: str):
    try:
        import cfx.generators as generators

        return generators.REGISTRY.get(name).cls, generators.ECCo, generators.hyperparameters(name)
    except (ImportError, KeyError, ValueError):
        return None


def normalise(raw: Any, ctx) -> Any:
    """The raw ``ct`` mapping with its generator as ``generator: {name, ...}``: flat generator keys
    move there (DeprecationWarning; a different value under ``generator`` is an error), the name is
    checked against the registry and each key against what CT's search sets."""
    if not isinstance(raw, Mapping):
        return raw  # None (defaults) or a wrong type: the schema reports it
    ct = dict(raw)
    gen = ct.get("generator", {}) or {}
    gen = {"name": gen} if isinstance(gen, str) else gen
    if not isinstance(gen, Mapping):
        raise ctx.error("ct.generator", f"expected a generator item {{name: ecco, ...}}, {got(gen)}")
    gen = dict(gen)
    flat = [k for k in ct if k in _FLAT]
    for old in flat:
        key, value = _FLAT[old], ct.pop(old)
        if key in gen and plain(gen[key]) != plain(value):
            raise ctx.error(
                f"ct.{old}",
                f"ct.{old} (deprecated) is {value!r} but ct.generator.{key} is {gen[key]!r}: "
                f"set it once, as ct.generator.{key}",
            )
        gen[key] = value
    if flat:
        moved = ", ".join(f"ct.generator.{_FLAT[k]}" for k in flat)
        warnings.warn(
            f"ct.{', ct.'.join(flat)}: settings of CT's search generator are keys of ct.generator now "
            f"({moved}); the flat keys are deprecated and will be removed in 0.3",
            DeprecationWarning,
            stacklevel=4,
        )
    name = gen.get("name", "ecco")
    check_name(name, registry("generators"), "generator", "ct.generator.name", ctx)
    found = _generator_class(name)
    if found is not None:
        cls, ecco, hyper = found
        if cls is not ecco:
            raise ctx.error(
                "ct.generator.name",
                f"counterfactual training searches with ECCo (its epoch is compiled "
                f"for it); {name!r} is class {cls.__name__}",
            )
        for k in gen:
            if k != "name" and k not in GENERATOR_FIELDS:
                what = "is an ECCo option CT's search does not set" if k in hyper else "is not an ECCo option"
                raise ctx.error(f"ct.generator.{k}", f"{k} {what}; CT's search sets {', '.join(GENERATOR_FIELDS)}")
    ct["generator"] = gen
    return ct


def record(generator) -> dict:
    """A search generator as a result record's JSON: its class and its fields set at construction."""
    fields = {f.name: getattr(generator, f.name) for f in dataclasses.fields(generator) if f.init}
    return {"class": type(generator).__name__, **{k: v for k, v in fields.items() if not callable(v)}}

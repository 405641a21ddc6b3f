"""Counterfactual generators: frozen PyTree dataclasses of hyperparameters.

Use a class directly (``cfx.generators.Generic(cost=0.5)``) or by registry name
(``cfx.generators.make("wachter", data=train)``). A generator that summarises data is fitted
with ``gen.fit(classifier, train, key=key)`` (again after every retraining).

Add a generator: write its class in a module of this package and add one registry line below.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax

from cfx import _deprecated
from cfx.generators.base import (
    CONVERGENCE,
    OPTIMIZERS,
    STARTS,
    Generator,
    StepContext,
    Term,
    fitted,
    generator_class,
    static,
)
from cfx.generators.base import generator  # noqa: F401  (the decorator's old name: warns, cfx 0.3 removes it)
from cfx.generators.dice import DiCE
from cfx.generators.eccco import ECCCo, ECCCoL1, ECCCoPlus, ECCo
from cfx.generators.feature_tweak import FeatureTweak
from cfx.generators.generic import Generic, Wachter
from cfx.generators.greedy import Greedy
from cfx.generators.growing_spheres import GrowingSpheres
from cfx.generators.latent import CLUE, REVISE, VAESpace, in_latent_space, latent_space
from cfx.generators.mint import MINT
from cfx.generators.mitigation import ClaPROAR, Gravitational
from cfx.generators.probe import Probe
from cfx.generators.tcrex import TCREx
from cfx.registry import Registry


class Entry(NamedTuple):
    """A registry entry: a generator class and the defaults this name implies."""

    cls: type[Generator]
    defaults: dict = {}
    description: str = ""


_ENTRIES = {
    "generic": Entry(Generic),
    "wachter": Entry(Wachter),
    "gravitational": Entry(Gravitational),
    "claproar": Entry(ClaPROAR),
    "dice": Entry(DiCE),
    "greedy": Entry(Greedy),
    "conservative": Entry(
        Generic, {"threshold": 0.9}, "SaTML 2023 mitigation: Generic with a conservative threshold tau = 0.9"
    ),
    "eccco": Entry(ECCCo),
    "ecco": Entry(ECCo),
    "eccco_no_conformal": Entry(
        ECCCo, {"set_size": 0.0}, "ECCCo ablation without the conformal set-size term (set_size = 0)"
    ),
    "eccco_no_energy": Entry(ECCCo, {"energy": 0.0}, "ECCCo ablation without the energy term (energy = 0)"),
    "eccco_plus": Entry(ECCCoPlus),
    "eccco_l1": Entry(ECCCoL1),
    "probe": Entry(Probe),
    "revise": Entry(REVISE),
    "clue": Entry(CLUE),
    "growing_spheres": Entry(GrowingSpheres),
    "mint": Entry(MINT),
    "tcrex": Entry(TCREx),
}
ALIASES = {"schut": "greedy"}
#: name -> :class:`Entry` (a :class:`cfx.registry.Registry`).
REGISTRY: Registry[Entry] = Registry(
    "generator", _ENTRIES, aliases=ALIASES, describe=lambda e: e.description or e.cls.description
)
#: Generators for one family of models only, outside the registry (which every benchmark runs on
#: every model): pass an instance to cfx.generate / cfx.explain. FeatureTweak: tree ensembles.
MODEL_SPECIFIC: dict[str, type[Generator]] = {"feature_tweak": FeatureTweak}


def _entry(name: str) -> Entry:
    return REGISTRY.get(name)


def make(name: str, data=None, *, classifier=None, key: jax.Array | None = None, **hyperparams) -> Generator:
    """Build a registered generator from its hyperparameters (the entry's defaults first).

    With ``data`` (the training Dataset) it is also fitted: ``.fit(classifier, data, key=key)``
    (key default ``jax.random.key(0)``).
    """
    entry = _entry(name)
    gen = entry.cls(**{**entry.defaults, **hyperparams})
    if data is not None:
        gen = gen.fit(classifier, data, key=jax.random.key(0) if key is None else key)
    return gen


def hyperparameters(name: str) -> dict[str, Any]:
    """Every settable key of a registry entry -> its default: the generator's fields (weights,
    step rule, search defaults such as ``threshold`` and ``num_counterfactuals``), without the
    leaves that ``fit`` computes."""
    entry = _entry(name)
    out = {}
    for f in dataclasses.fields(entry.cls):
        if f.init and not f.metadata.get("fitted"):
            out[f.name] = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
    out.update(entry.defaults)
    return out


def register(
    name: str, cls: type[Generator], defaults: dict | None = None, description: str = "", *, replace: bool = False
) -> None:
    """Add a generator to the registry (configs, ``make``, ``cfx list``) under ``name``; a name already
    registered is an error unless ``replace=True``."""
    if not (isinstance(cls, type) and issubclass(cls, Generator)):
        raise TypeError(f"register({name!r}, ...) needs a Generator subclass; got {cls!r}")
    REGISTRY.register(name, Entry(cls, dict(defaults or {}), description), replace=replace)


def describe() -> dict[str, str]:
    """One-line description per registry name."""
    return REGISTRY.describe()


__all__ = [
    "CONVERGENCE",
    "STARTS",
    "OPTIMIZERS",
    "Generator",
    "Term",
    "generator_class",
    "static",
    "fitted",
    "Generic",
    "Wachter",
    "Gravitational",
    "ClaPROAR",
    "DiCE",
    "Greedy",
    "ECCCo",
    "ECCo",
    "Probe",
    "REVISE",
    "CLUE",
    "ECCCoPlus",
    "ECCCoL1",
    "GrowingSpheres",
    "FeatureTweak",
    "MODEL_SPECIFIC",
    "StepContext",
    "REGISTRY",
    "Entry",
    "make",
    "hyperparameters",
    "register",
    "describe",
    "MINT",
    "TCREx",
    "VAESpace",
    "in_latent_space",
    "latent_space",
]

# Renamed in cfx 0.2 (removed in 0.3): the old names still work, with a warning.
__getattr__ = _deprecated.module_aliases(
    "cfx.generators", {"Penalty": ("cfx.terms", "Term"), "INITS": ("cfx.generators", "STARTS")}
)
